/**
 * Real archives from podman and skopeo read through lib/oci sources: manifest and config bytes
 * compared with `skopeo inspect --raw`, every layer blob verified and decompressed to its diff_id.
 */
import assert from "node:assert/strict";
import {
  decompressLayer,
  type ImageSource,
  type LoadedImage,
  loadImage,
  MediaType,
  openImageSource,
  parseManifest,
  parsePlatform,
} from "../../lib/oci/mod.ts";
import { buildTar, readTar } from "../../lib/tar/mod.ts";
import { run } from "../helpers/cli.ts";
import { gen, podmanStorage, sha256, writeOciLayout } from "../helpers/oci.ts";
import { concat } from "../../lib/bytes/mod.ts";

const td = new TextDecoder();
const te = new TextEncoder();

async function skopeoRaw(ref: string, config = false): Promise<Uint8Array> {
  const r = await new Deno.Command("skopeo", {
    args: ["inspect", "--raw", ...(config ? ["--config"] : []), ref],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (r.code !== 0) throw new Error(`skopeo inspect ${ref}: ${td.decode(r.stderr)}`);
  return r.stdout;
}

/** Reads every layer (verified by the source), decompresses it, and returns path → content of its files. */
async function checkLayers(src: ImageSource, img: LoadedImage): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  for (const l of img.layers) {
    const parts: Uint8Array[] = [];
    for await (
      const ev of readTar(tee(decompressLayer(await src.getBlob(l.descriptor), l.descriptor.mediaType), parts))
    ) {
      if (ev.type === "entry" && ev.kind === "file") files.set(ev.path, await ev.bytes());
      if (ev.type === "end") { for await (const _ of ev.trailing()) { /* drain into the hash */ } }
    }
    assert.equal(sha256(concat(parts)), l.diffId, `layer ${l.descriptor.digest} decompresses to its diff_id`);
  }
  return files;
}

async function* tee(src: AsyncIterable<Uint8Array>, into: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for await (const c of src) {
    into.push(c.slice());
    yield c;
  }
}

/** Compares our view of `ref` with skopeo's (an independent containers/image reader). */
async function compareWithSkopeo(
  ref: string,
  skopeoRef: string,
): Promise<{ img: LoadedImage; files: Map<string, Uint8Array> }> {
  const src = await openImageSource(ref);
  const img = await loadImage(src);
  const raw = await skopeoRaw(skopeoRef);
  assert.deepEqual(img.manifest.bytes, raw, `${ref}: manifest bytes as skopeo reads them`);
  assert.equal(img.manifest.digest, sha256(raw));
  assert.deepEqual(img.configBytes, await skopeoRaw(skopeoRef, true), `${ref}: config bytes`);
  const files = await checkLayers(src, img);
  src.close();
  return { img, files };
}

const FILES = {
  "etc/hostname": "rig\n",
  "data/s65": gen(65, "s65"),
  "data/s1m": gen(1 << 20, "s1m"),
  "data/sub/deep": "deep\n",
};

Deno.test("oci sources: podman/skopeo archives and layouts read and verified", async (t) => {
  await using pm = await podmanStorage();
  const name = "localhost/rig/src:1";
  await pm.buildScratch(name, FILES, [
    "COPY rootfs/etc/hostname /etc/second",
    "LABEL org.opencontainers.image.title=rig-src",
  ]);
  const id = (await pm.podman(["inspect", "--format", "{{.Id}}", name])).trim();
  const dir = pm.dir;

  const checkFiles = (files: Map<string, Uint8Array>) => {
    for (const [p, c] of Object.entries(FILES)) {
      assert.deepEqual(files.get(p), typeof c === "string" ? te.encode(c) : c, p);
    }
    assert.deepEqual(files.get("etc/second"), te.encode("rig\n"));
  };

  await t.step("oci-archive from podman save", async () => {
    await pm.podman(["save", "--format", "oci-archive", "-o", `${dir}/oa.tar`, name]);
    const { img, files } = await compareWithSkopeo(`oci-archive:${dir}/oa.tar:${name}`, `oci-archive:${dir}/oa.tar`);
    assert.equal(img.parsed.config.digest, `sha256:${id}`);
    assert.deepEqual(img.layers.map((l) => l.descriptor.mediaType), [MediaType.ociLayerGzip, MediaType.ociLayerGzip]);
    assert.equal(img.config?.labels["org.opencontainers.image.title"], "rig-src");
    checkFiles(files);
    // Without a tag: the only image.
    assert.equal(
      (await (await openImageSource(`oci-archive:${dir}/oa.tar`)).getManifest()).digest,
      img.manifest.digest,
    );
  });

  await t.step("docker-archive from podman save (manifest synthesised as containers/image does)", async () => {
    await pm.podman(["save", "--format", "docker-archive", "-o", `${dir}/da.tar`, name]);
    const { img, files } = await compareWithSkopeo(`docker-archive:${dir}/da.tar`, `docker-archive:${dir}/da.tar`);
    assert.equal(img.manifest.mediaType, MediaType.dockerManifest);
    assert.equal(img.parsed.config.digest, `sha256:${id}`);
    assert.deepEqual(img.layers.map((l) => l.descriptor.digest), img.config!.diffIds);
    checkFiles(files);
    const named = await loadImage(await openImageSource(`docker-archive:${dir}/da.tar:${name}`));
    assert.equal(named.manifest.digest, img.manifest.digest);
  });

  // Uncompressed layers from real tools are covered by docker-archive (podman save always gzips OCI layers).
  for (const comp of ["gzip", "zstd"] as const) {
    await t.step(`oci: layout from podman push (${comp})`, async () => {
      const layout = `${dir}/layout-${comp}`;
      await pm.podman(["push", "-q", "--compression-format", comp, name, `oci:${layout}:v1`]);
      const { img, files } = await compareWithSkopeo(`oci:${layout}:v1`, `oci:${layout}:v1`);
      const want = comp === "gzip" ? MediaType.ociLayerGzip : MediaType.ociLayerZstd;
      assert.deepEqual(img.layers.map((l) => l.descriptor.mediaType), [want, want]);
      assert.equal(img.parsed.config.digest, `sha256:${id}`);
      checkFiles(files);
    });
  }

  await t.step("skopeo copy to an OCI layout with zstd", async () => {
    const store = `containers-storage:[vfs@${dir}/root+${dir}/run]${name}`;
    await run("skopeo", ["copy", "-q", "--dest-compress-format", "zstd", store, `oci:${dir}/sk:v2`]);
    const { files } = await compareWithSkopeo(`oci:${dir}/sk:v2`, `oci:${dir}/sk:v2`);
    checkFiles(files);
  });

  await t.step("a hand-made layout (gzip, zstd, none) is valid for skopeo and for us", async () => {
    const tars = ["gzip", "zstd", "none"].map((seed) =>
      buildTar([{ entry: { path: `${seed}/f`, kind: "file" }, data: gen(5000, seed) }])
    );
    const [w] = await writeOciLayout(`${dir}/hand`, {
      layers: [{ tar: tars[0], compression: "gzip" }, { tar: tars[1], compression: "zstd" }, {
        tar: tars[2],
        compression: "none",
      }],
      tag: "h",
    });
    // skopeo copy verifies every blob digest while copying.
    await run("skopeo", ["copy", "-q", `oci:${dir}/hand:h`, `dir:${dir}/hand-copy`]);
    const { img, files } = await compareWithSkopeo(`oci:${dir}/hand:h`, `oci:${dir}/hand:h`);
    assert.equal(img.manifest.digest, w.manifest.digest);
    for (const seed of ["gzip", "zstd", "none"]) assert.deepEqual(files.get(`${seed}/f`), gen(5000, seed));
    const m = parseManifest(img.manifest.bytes);
    assert.ok(m.kind === "manifest" && m.layers.length === 3);
  });

  await t.step("multi-arch index from podman manifest push: platform selection", async () => {
    await pm.buildScratch("localhost/rig/arm:1", { "arch.txt": "arm64\n" }, [], ["--arch", "arm64", "--os", "linux"]);
    await pm.podman(["manifest", "create", "localhost/rig/list:1"]);
    await pm.podman(["manifest", "add", "localhost/rig/list:1", `containers-storage:${name}`]);
    await pm.podman(["manifest", "add", "localhost/rig/list:1", "containers-storage:localhost/rig/arm:1"]);
    await pm.podman(["manifest", "push", "-q", "--all", "localhost/rig/list:1", `oci:${dir}/multi:m`]);
    const index = JSON.parse(td.decode(await skopeoRaw(`oci:${dir}/multi:m`)));
    assert.equal(index.mediaType, MediaType.ociIndex);
    const byArch = (a: string) =>
      index.manifests.find((d: { platform: { architecture: string } }) => d.platform.architecture === a).digest;
    const amd = await openImageSource(`oci:${dir}/multi:m`, { platform: parsePlatform("linux/amd64") });
    assert.equal((await amd.getManifest()).digest, byArch("amd64"));
    const arm = await openImageSource(`oci:${dir}/multi:m`, { platform: parsePlatform("linux/arm64") });
    const img = await loadImage(arm);
    assert.equal(img.manifest.digest, byArch("arm64"));
    assert.equal(img.config?.architecture, "arm64");
    assert.deepEqual((await checkLayers(arm, img)).get("arch.txt"), te.encode("arm64\n"));
    const none = await openImageSource(`oci:${dir}/multi:m`, { platform: parsePlatform("linux/s390x") });
    await assert.rejects(
      none.getManifest(),
      /no image for platform linux\/s390x in the index \(available: linux\/amd64, linux\/arm64/,
    );
  });
});
