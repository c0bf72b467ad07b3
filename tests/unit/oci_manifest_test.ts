import assert from "node:assert/strict";
import {
  type ImageIndex,
  MediaType,
  parseImageConfig,
  parseManifest,
  parsePlatform,
  selectPlatform,
} from "../../lib/oci/mod.ts";

const te = new TextEncoder();
const j = (v: unknown) => te.encode(JSON.stringify(v));
const D = (c: string) => `sha256:${c.repeat(64)}`;

const ociManifest = {
  schemaVersion: 2,
  mediaType: MediaType.ociManifest,
  config: { mediaType: MediaType.ociConfig, digest: D("c"), size: 100 },
  layers: [
    { mediaType: MediaType.ociLayerGzip, digest: D("1"), size: 10 },
    { mediaType: MediaType.ociLayerZstd, digest: D("2"), size: 20, annotations: { a: "b" } },
  ],
  annotations: { "org.opencontainers.image.title": "t" },
};

Deno.test("oci manifest: OCI and Docker v2s2 manifests", () => {
  const m = parseManifest(j(ociManifest));
  assert.ok(m.kind === "manifest");
  assert.equal(m.mediaType, MediaType.ociManifest);
  assert.equal(m.config.digest, D("c"));
  assert.deepEqual(m.layers.map((l) => [l.mediaType, l.digest, l.size]), [
    [MediaType.ociLayerGzip, D("1"), 10],
    [MediaType.ociLayerZstd, D("2"), 20],
  ]);
  assert.deepEqual(m.layers[1].annotations, { a: "b" });
  // No mediaType field: the descriptor's type decides, else the shape.
  const { mediaType: _, ...noType } = ociManifest;
  assert.equal(parseManifest(j(noType), MediaType.ociManifest).mediaType, MediaType.ociManifest);
  assert.equal(parseManifest(j(noType)).mediaType, MediaType.ociManifest);
  const docker = {
    schemaVersion: 2,
    mediaType: MediaType.dockerManifest,
    config: { mediaType: MediaType.dockerConfig, size: 7, digest: D("d") },
    layers: [{ mediaType: MediaType.dockerLayerGzip, size: 9, digest: D("e") }],
  };
  const dm = parseManifest(j(docker), MediaType.dockerManifest);
  assert.ok(dm.kind === "manifest" && dm.config.mediaType === MediaType.dockerConfig);
  // artifactType and subject are kept.
  const art = parseManifest(j({ ...ociManifest, artifactType: "application/x", subject: ociManifest.config }));
  assert.ok(art.kind === "manifest" && art.artifactType === "application/x" && art.subject?.digest === D("c"));
});

Deno.test("oci manifest: indexes and manifest lists", () => {
  const idx = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [
      { mediaType: MediaType.ociManifest, digest: D("a"), size: 1, platform: { os: "linux", architecture: "amd64" } },
    ],
  };
  const p = parseManifest(j(idx));
  assert.ok(p.kind === "index" && p.manifests[0].platform?.architecture === "amd64");
  const list = parseManifest(j({ ...idx, mediaType: MediaType.dockerManifestList }));
  assert.ok(list.kind === "index");
  const { mediaType: _, ...noType } = idx;
  assert.equal(parseManifest(j(noType)).kind, "index");
});

Deno.test("oci manifest: invalid manifests are rejected with the reason", () => {
  const cases: [unknown, RegExp, string?][] = [
    [{ schemaVersion: 1, name: "x", fsLayers: [] }, /schema 1/],
    [ociManifest, /schema 1/, MediaType.dockerSchema1Signed],
    [{ ...ociManifest, schemaVersion: 3 }, /schemaVersion/],
    [ociManifest, /does not match the expected/, MediaType.dockerManifest],
    [{ ...ociManifest, mediaType: "application/json" }, /unsupported manifest media type/],
    [{ ...ociManifest, layers: undefined }, /no layers array/],
    [{ ...ociManifest, config: { ...ociManifest.config, digest: "sha256:xyz" } }, /digest/],
    [{ ...ociManifest, config: { ...ociManifest.config, size: -1 } }, /non-negative integer/],
    [{ ...ociManifest, config: { digest: D("c"), size: 1 } }, /missing mediaType/],
    [{ ...ociManifest, annotations: { a: 1 } }, /object of strings/],
    [{ schemaVersion: 2 }, /cannot tell/],
    [[1, 2], /not a JSON object/],
  ];
  for (const [v, re, hint] of cases) assert.throws(() => parseManifest(j(v), hint), re, JSON.stringify(v));
  assert.throws(() => parseManifest(te.encode("{not json")), /not valid JSON/);
});

Deno.test("oci config: diff_ids, labels, and old Docker configs", () => {
  const c = parseImageConfig(j({
    architecture: "amd64",
    os: "linux",
    created: "2023-11-14T22:13:20Z",
    config: { Labels: { "containers.bootc": "1" } },
    rootfs: { type: "layers", diff_ids: [D("1"), D("2")] },
  }));
  assert.deepEqual(c.diffIds, [D("1"), D("2")]);
  assert.deepEqual(c.labels, { "containers.bootc": "1" });
  assert.equal(c.architecture, "amd64");
  // Docker 1.10+-era config with container_config/docker_version and no config section.
  const old = parseImageConfig(j({
    architecture: "amd64",
    container_config: { Labels: { old: "yes" }, Cmd: ["/bin/sh"] },
    docker_version: "1.13.1",
    rootfs: { type: "layers", diff_ids: [D("3")] },
  }));
  assert.deepEqual(old.diffIds, [D("3")]);
  assert.deepEqual(old.labels, { old: "yes" });
  assert.equal(old.os, undefined);
  assert.throws(() => parseImageConfig(j({ architecture: "amd64" })), /before Docker 1\.10/);
  assert.throws(() => parseImageConfig(j({ rootfs: { type: "x", diff_ids: [] } })), /not "layers"/);
  assert.throws(() => parseImageConfig(j({ rootfs: { type: "layers", diff_ids: ["md5:1"] } })), /digest/);
});

function index(platforms: (string | null)[]): ImageIndex {
  return {
    kind: "index",
    mediaType: MediaType.ociIndex,
    manifests: platforms.map((p, i) => {
      const [os, architecture, variant] = (p ?? "unknown/unknown").split("/");
      return {
        mediaType: MediaType.ociManifest,
        digest: D(String(i)),
        size: 1,
        platform: { os, architecture, ...(variant ? { variant } : {}) },
      } as ImageIndex["manifests"][number];
    }),
  };
}

Deno.test("oci platform: selection for host and --platform", () => {
  const idx = index(["linux/arm64/v8", "linux/amd64", "linux/arm/v7", "linux/arm/v6", null, "windows/amd64"]);
  assert.equal(selectPlatform(idx, { os: "linux", architecture: "amd64" }).digest, D("1"));
  assert.equal(selectPlatform(idx, parsePlatform("linux/arm64")).digest, D("0"));
  assert.equal(selectPlatform(idx, parsePlatform("linux/aarch64/v8")).digest, D("0"));
  assert.equal(selectPlatform(idx, parsePlatform("linux/arm/v6")).digest, D("3"));
  assert.equal(selectPlatform(idx, parsePlatform("windows/amd64")).digest, D("5"));
  // arm64 without a variant in the index equals v8.
  assert.equal(selectPlatform(index(["linux/arm64"]), parsePlatform("linux/arm64/v8")).digest, D("0"));
  // The host (this test machine is linux/amd64).
  if (Deno.build.arch === "x86_64") assert.equal(selectPlatform(idx).digest, D("1"));
  assert.throws(
    () => selectPlatform(idx, parsePlatform("linux/s390x")),
    /no image for platform linux\/s390x in the index \(available: linux\/arm64\/v8, linux\/amd64, linux\/arm\/v7, linux\/arm\/v6, unknown\/unknown, windows\/amd64\)/,
  );
  assert.throws(() => selectPlatform(idx, parsePlatform("linux/arm/v5")), /no image for platform linux\/arm\/v5/);
  for (const bad of ["linux", "linux/", "a/b/c/d", "linux/amd 64"]) {
    assert.throws(() => parsePlatform(bad), /invalid platform/);
  }
  assert.deepEqual(parsePlatform("linux/x86_64"), { os: "linux", architecture: "amd64" });
});
