import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { MediaType } from "../../lib/oci/mediatype.ts";
import {
  mapConcurrent,
  RegistryClient,
  type RegistryClientOptions,
  RegistryImageSource,
} from "../../lib/registry/mod.ts";
import { type FakeRegistry, fakeRegistry } from "../helpers/fake_registry.ts";
import { randomBytes } from "../helpers/oci.ts";

const { ociManifest: OCI_MANIFEST, ociIndex: OCI_INDEX, dockerManifest: DOCKER_MANIFEST } = MediaType;
const FAST: RegistryClientOptions = { tlsVerify: false, retry: { attempts: 4, baseDelayMs: 5, maxDelayMs: 20 } };
const NO_AUTH_ENV = { authEnv: {} };

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A one-layer image in `reg` under `rig/img:1`. */
function addImage(reg: FakeRegistry, layerSize = 300_000) {
  const layer = reg.addBlob("rig/img", randomBytes(layerSize));
  const config = reg.addBlob("rig/img", new TextEncoder().encode('{"architecture":"amd64","os":"linux"}'));
  const manifest = reg.addManifest("rig/img", OCI_MANIFEST, {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", ...layer }],
  }, ["1"]);
  return { layer, config, manifest };
}

const open = (reg: FakeRegistry, ref = "rig/img:1", opts: RegistryClientOptions = {}) =>
  RegistryClient.open(`${reg.host}/${ref}`, { ...FAST, ...NO_AUTH_ENV, ...opts });

Deno.test("manifest by tag and by digest: raw bytes, verified digest, Accept header", async () => {
  await using reg = fakeRegistry();
  const img = addImage(reg);
  const client = await open(reg);
  const byTag = await client.getManifest();
  assert.deepEqual(byTag.bytes, img.manifest.bytes);
  assert.equal(byTag.digest, `sha256:${createHash("sha256").update(img.manifest.bytes).digest("hex")}`);
  assert.equal(byTag.mediaType, OCI_MANIFEST);
  const byDigest = await client.getManifest(img.manifest.digest);
  assert.equal(byDigest.digest, img.manifest.digest);
  const accept = reg.requests[0].accept ?? "";
  for (const t of [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, "manifest.list.v2+json"]) {
    assert.match(accept, new RegExp(t.replace(/[.+]/g, "\\$&")));
  }
});

Deno.test("manifest: Docker-Content-Digest mismatch and unknown media type are one-line errors", async () => {
  await using reg = fakeRegistry();
  addImage(reg);
  reg.addManifest("rig/img", "application/vnd.docker.distribution.manifest.v1+prettyjws", { schemaVersion: 1 }, [
    "old",
  ]);
  reg.addManifest("rig/img", "application/vnd.example.thing+json", { schemaVersion: 2, layers: [] }, ["odd"]);
  const client = await open(reg);
  await assert.rejects(() => client.getManifest("old"), {
    message: `${reg.host}/rig/img:old: Docker schema 1 manifests are not supported`,
  });
  await assert.rejects(() => client.getManifest("odd"), {
    message: `${reg.host}/rig/img:odd: unsupported manifest media type "application/vnd.example.thing+json"`,
  });
  reg.digestHeaderOverride = "sha256:" + "0".repeat(64);
  await assert.rejects(() => client.getManifest(), /rig\/img:1: manifest digest mismatch: got sha256:/);
});

Deno.test("404, 403 and 401 name the reference", async () => {
  await using reg = fakeRegistry();
  const img = addImage(reg);
  const client = await open(reg, "rig/img:nope");
  await assert.rejects(() => client.getManifest(), {
    message: `${reg.host}/rig/img:nope: manifest unknown (HTTP 404: MANIFEST_UNKNOWN: manifest unknown)`,
  });
  const c2 = await open(reg);
  await assert.rejects(() => c2.getBlob({ digest: "sha256:" + "1".repeat(64), size: 3 }), {
    message: `${reg.host}/rig/img: blob sha256:${
      "1".repeat(64)
    }: blob not found (HTTP 404: BLOB_UNKNOWN: blob unknown to registry)`,
  });
  reg.faults.push({ path: `/v2/rig/img/manifests/1`, status: 403 });
  await assert.rejects(() => c2.getManifest(), {
    message: `${reg.host}/rig/img:1: access denied (HTTP 403: FAULT: injected 403)`,
  });
  assert.ok(img);
});

Deno.test("index resolved by platform; a missing platform lists the available ones", async () => {
  await using reg = fakeRegistry();
  const amd = addImage(reg);
  const arm = reg.addManifest("rig/img", OCI_MANIFEST, {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...amd.config },
    layers: [],
  });
  const index = reg.addManifest("rig/img", OCI_INDEX, {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      {
        mediaType: OCI_MANIFEST,
        digest: amd.manifest.digest,
        size: amd.manifest.size,
        platform: { os: "linux", architecture: "amd64" },
      },
      { mediaType: OCI_MANIFEST, digest: arm.digest, size: arm.size, platform: { os: "linux", architecture: "arm64" } },
    ],
  }, ["multi"]);
  const client = await open(reg, "rig/img:multi");
  const a = await client.resolveManifest({ os: "linux", architecture: "amd64" });
  assert.equal(a.manifest.digest, amd.manifest.digest);
  assert.equal(a.index?.digest, index.digest);
  const b = await client.resolveManifest({ os: "linux", architecture: "arm64" });
  assert.equal(b.manifest.digest, arm.digest);
  await assert.rejects(() => client.resolveManifest({ os: "linux", architecture: "s390x" }), {
    message:
      `${reg.host}/rig/img:multi: no image for platform linux/s390x in the index (available: linux/amd64, linux/arm64)`,
  });
  const single = await (await open(reg)).resolveManifest({ os: "linux", architecture: "s390x" });
  assert.equal(single.index, undefined);
});

Deno.test("blob: streamed bytes verified; digest mismatch, short and long blobs fail", async () => {
  await using reg = fakeRegistry();
  const img = addImage(reg);
  const client = await open(reg);
  const bytes = await readAll(await client.getBlob(img.layer));
  assert.equal(bytes.length, img.layer.size);
  assert.equal(`sha256:${createHash("sha256").update(bytes).digest("hex")}`, img.layer.digest);
  // The registry serves the blob, but the descriptor says something else.
  await assert.rejects(async () => readAll(await client.getBlob({ ...img.layer, size: img.layer.size + 1 })), {
    message: `blob ${img.layer.digest}: size mismatch: got ${img.layer.size} bytes, expected ${img.layer.size + 1}`,
  });
  await assert.rejects(async () => readAll(await client.getBlob({ ...img.layer, size: 1000 })), {
    message: `blob ${img.layer.digest}: more than the expected 1000 bytes`,
  });
  const wrong = "sha256:" + "2".repeat(64);
  reg.addBlobAs("rig/img", wrong, new TextEncoder().encode("evil content"));
  await assert.rejects(async () => readAll(await client.getBlob({ digest: wrong, size: 12 })), {
    message: `blob ${wrong}: digest mismatch: got sha256:${createHash("sha256").update("evil content").digest("hex")}`,
  });
});

Deno.test("basic auth: right credentials pass, wrong or missing ones fail clearly", async () => {
  await using reg = fakeRegistry({ auth: { scheme: "basic", username: "alice", password: "s3cret" } });
  const img = addImage(reg);
  const ok = await open(reg, "rig/img:1", { credentials: { username: "alice", password: "s3cret" } });
  assert.equal((await ok.getManifest()).digest, img.manifest.digest);
  assert.equal((await readAll(await ok.getBlob(img.layer))).length, img.layer.size);
  const wrong = await open(reg, "rig/img:1", { credentials: { username: "alice", password: "nope" } });
  await assert.rejects(() => wrong.getManifest(), {
    message: `${reg.host}/rig/img:1: the registry rejected the credentials for ${reg.host} (HTTP 401)`,
  });
  const anon = await open(reg);
  await assert.rejects(() => anon.getManifest(), {
    message: `${reg.host}/rig/img:1: authentication required (HTTP 401); log in or pass an auth file`,
  });
});

Deno.test("bearer auth: challenge -> token endpoint with Basic credentials -> Bearer requests", async () => {
  await using reg = fakeRegistry({ auth: { scheme: "bearer", username: "bob", password: "pw" } });
  const img = addImage(reg);
  const dir = await Deno.makeTempDir();
  try {
    const authFile = `${dir}/auth.json`;
    await Deno.writeTextFile(authFile, JSON.stringify({ auths: { [reg.host]: { auth: btoa("bob:pw") } } }));
    const client = await open(reg, "rig/img:1", { authFile });
    assert.equal((await client.getManifest()).digest, img.manifest.digest);
    assert.equal((await readAll(await client.getBlob(img.layer))).length, img.layer.size);
    const tokenRequest = reg.requests.find((r) => r.path === "/token");
    assert.equal(tokenRequest?.authorization, `Basic ${btoa("bob:pw")}`);
    assert.match(reg.requests.at(-1)?.authorization ?? "", /^Bearer /);
    await Deno.writeTextFile(authFile, JSON.stringify({ auths: { [reg.host]: { auth: btoa("bob:bad") } } }));
    const wrong = await open(reg, "rig/img:1", { authFile });
    await assert.rejects(() => wrong.getManifest(), {
      message: `${reg.host}/rig/img:1: the token server 127.0.0.1:${
        reg.host.split(":")[1]
      } rejected the credentials (HTTP 401)`,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("5xx answers are retried with backoff; too many give a clear error", async () => {
  await using reg = fakeRegistry();
  const img = addImage(reg);
  const client = await open(reg);
  const path = `/v2/rig/img/manifests/1`;
  reg.faults.push({ path, status: 503 }, { path, status: 500 });
  assert.equal((await client.getManifest()).digest, img.manifest.digest);
  assert.equal(reg.requests.filter((r) => r.path === path).length, 3);
  for (let i = 0; i < 4; i++) reg.faults.push({ path, status: 502 });
  await assert.rejects(() => client.getManifest(), {
    message: `${reg.host}/rig/img:1: registry answered (HTTP 502: FAULT: injected 502)`,
  });
});

Deno.test("a connection cut while a manifest arrives is retried", async () => {
  await using reg = fakeRegistry();
  const img = addImage(reg);
  const client = await open(reg);
  const path = `/v2/rig/img/manifests/1`;
  reg.faults.push({ path, cutAfter: 10 });
  assert.deepEqual((await client.getManifest()).bytes, img.manifest.bytes);
  assert.equal(reg.requests.filter((r) => r.path === path).length, 2);
  for (let i = 0; i < 4; i++) reg.faults.push({ path, cutAfter: 10 });
  await assert.rejects(() => client.getManifest(), {
    message: `${reg.host}/rig/img:1: connection lost while reading the manifest`,
  });
});

Deno.test("a connection cut mid-blob resumes with Range and the result verifies", async () => {
  await using reg = fakeRegistry();
  const img = addImage(reg, 3 << 20);
  const client = await open(reg);
  const path = `/v2/rig/img/blobs/${img.layer.digest}`;
  reg.faults.push({ path, cutAfter: 1 << 20 });
  const bytes = await readAll(await client.getBlob(img.layer));
  assert.equal(`sha256:${createHash("sha256").update(bytes).digest("hex")}`, img.layer.digest);
  const gets = reg.requests.filter((r) => r.path === path);
  assert.equal(gets.length, 2);
  assert.equal(gets[0].range, null);
  assert.equal(gets[1].range, `bytes=${1 << 20}-`);
});

Deno.test("without Range support a cut blob is restarted and the known prefix skipped", async () => {
  await using reg = fakeRegistry();
  const img = addImage(reg, 2 << 20);
  reg.rangeSupport = false;
  const client = await open(reg);
  const path = `/v2/rig/img/blobs/${img.layer.digest}`;
  reg.faults.push({ path, cutAfter: 700_000 }, { path, cutAfter: 1_500_000 });
  const bytes = await readAll(await client.getBlob(img.layer));
  assert.equal(`sha256:${createHash("sha256").update(bytes).digest("hex")}`, img.layer.digest);
  assert.equal(reg.requests.filter((r) => r.path === path).length, 3);
});

Deno.test("a blob whose connection keeps breaking without progress fails naming the blob", async () => {
  await using reg = fakeRegistry();
  const img = addImage(reg, 100_000);
  const client = await open(reg);
  const path = `/v2/rig/img/blobs/${img.layer.digest}`;
  for (let i = 0; i < 6; i++) reg.faults.push({ path, cutAfter: i === 0 ? 1000 : 0 });
  await assert.rejects(async () => readAll(await client.getBlob(img.layer)), {
    message: `${reg.host}/rig/img: blob ${img.layer.digest}: connection lost after 1000 of 100000 bytes`,
  });
});

Deno.test("an unreachable registry is retried, then reported with its address", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const client = await RegistryClient.open(`127.0.0.1:${port}/rig/img:1`, { ...FAST, ...NO_AUTH_ENV });
  await assert.rejects(() => client.getManifest(), {
    message: `127.0.0.1:${port}/rig/img:1: cannot reach http://127.0.0.1:${port}`,
  });
});

Deno.test("registries.conf insecure = true selects plain http without --tls-verify", async () => {
  await using reg = fakeRegistry();
  const img = addImage(reg);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/r.conf`, `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`);
    const client = await RegistryClient.open(`${reg.host}/rig/img:1`, {
      registriesConf: `${dir}/r.conf`,
      ...NO_AUTH_ENV,
    });
    assert.equal(client.scheme, "http");
    assert.equal((await client.getManifest()).digest, img.manifest.digest);
    await Deno.writeTextFile(`${dir}/r.conf`, "");
    const secure = await RegistryClient.open(`${reg.host}/rig/img:1`, {
      registriesConf: `${dir}/r.conf`,
      ...NO_AUTH_ENV,
    });
    assert.equal(secure.scheme, "https");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RegistryImageSource: platform manifest and verified blobs", async () => {
  await using reg = fakeRegistry();
  const img = addImage(reg);
  const src = await RegistryImageSource.open(`docker://${reg.host}/rig/img:1`, { ...FAST, ...NO_AUTH_ENV });
  const m = await src.getManifest();
  assert.equal(m.digest, img.manifest.digest);
  const config = JSON.parse(new TextDecoder().decode(m.bytes)).config;
  assert.equal(
    new TextDecoder().decode(await readAll(await src.getBlob(config))),
    '{"architecture":"amd64","os":"linux"}',
  );
  src.close();
});

Deno.test("mapConcurrent: keeps order, never exceeds the limit, stops on failure", async () => {
  let running = 0;
  let peak = 0;
  const out = await mapConcurrent([5, 1, 4, 2, 3, 0], 2, async (x) => {
    running++;
    peak = Math.max(peak, running);
    await new Promise((r) => setTimeout(r, x * 3));
    running--;
    return x * 10;
  });
  assert.deepEqual(out, [50, 10, 40, 20, 30, 0]);
  assert.equal(peak, 2);
  const started: number[] = [];
  await assert.rejects(
    () =>
      mapConcurrent([1, 2, 3, 4, 5], 1, async (x) => {
        started.push(x);
        if (x === 2) throw new Error("boom");
        await Promise.resolve();
        return x;
      }),
    /boom/,
  );
  assert.deepEqual(started, [1, 2]);
});
