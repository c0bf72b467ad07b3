/**
 * The registry client against Debian's real docker-registry 2.8 with the rig's test images:
 * every manifest and blob verified independently (sha256, skopeo, gzip, tar), Basic and Bearer
 * auth with right and wrong credentials, and a registry killed in the middle of a blob.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { MediaType } from "../../lib/oci/mediatype.ts";
import type { ManifestBlob } from "../../lib/oci/source.ts";
import { RegistryClient, type RegistryClientOptions } from "../../lib/registry/mod.ts";
import { requireRoot, run, scratchDir } from "../helpers/fs.ts";
import { pushTestImages, startRegistry, uploadBlob } from "../helpers/rig.ts";
import { randomBytes } from "../helpers/oci.ts";

const { ociManifest: OCI_MANIFEST, ociIndex: OCI_INDEX, dockerManifest: DOCKER_MANIFEST } = MediaType;
const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const json = (m: ManifestBlob) => JSON.parse(new TextDecoder().decode(m.bytes));
const BASE_OPTS: RegistryClientOptions = { tlsVerify: false, authEnv: {} };

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Golden values of test-rig.md §2.3 that do not depend on the build's config (layer content only). */
const BASE_LAYER = {
  blob: "sha256:8d706649c52e8e9da4fdc630926ecdd3d6057d50e75861765faf7fa6949d1dca",
  size: 2_209_912,
  diffId: "sha256:dfc92dde43567fab298d7bc624701209e078796cb691ff72e9f291ce9ba26bbb",
};

Deno.test("registry client against docker-registry", async (t) => {
  requireRoot();
  await using dir = await scratchDir("bootcfs-registry-it-");
  await using reg = await startRegistry(dir.path);
  const images = await pushTestImages(dir.path, reg.host);

  /** Fetches manifest, config and every layer of `ref`, checking each blob with an independent sha256. */
  const pullAll = async (ref: string, platform?: { os: string; architecture: string }) => {
    const client = await RegistryClient.open(ref, BASE_OPTS);
    const { manifest, index } = await client.resolveManifest(platform);
    const m = json(manifest);
    const blobs = new Map<string, Uint8Array>();
    for (const d of [m.config, ...m.layers]) {
      const bytes = await readAll(await client.getBlob(d));
      assert.equal(sha256(bytes), d.digest);
      assert.equal(bytes.length, d.size);
      blobs.set(d.digest, bytes);
    }
    return { manifest, index, m, blobs, client };
  };

  await t.step("manifests by tag match the registry and skopeo byte for byte", async () => {
    for (const ref of [images.base, images.baseDocker, images.layered, images.bootable, images.multi]) {
      const client = await RegistryClient.open(ref, BASE_OPTS);
      const m = await client.getManifest();
      assert.equal(m.digest, images.digests[ref], ref);
      assert.equal(sha256(m.bytes), images.digests[ref], ref);
      const raw = await run("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${ref}`]);
      assert.equal(new TextDecoder().decode(m.bytes), raw, ref);
      const byDigest = await client.getManifest(m.digest);
      assert.deepEqual(byDigest.bytes, m.bytes);
    }
  });

  await t.step("rig/base:1: OCI manifest, golden layer blob and diffID", async () => {
    const { manifest, m, blobs } = await pullAll(images.base);
    assert.equal(manifest.mediaType, OCI_MANIFEST);
    assert.equal(m.layers.length, 1);
    assert.equal(m.layers[0].digest, BASE_LAYER.blob);
    assert.equal(m.layers[0].size, BASE_LAYER.size);
    assert.equal(sha256(gunzipSync(blobs.get(BASE_LAYER.blob)!)), BASE_LAYER.diffId);
    const config = JSON.parse(new TextDecoder().decode(blobs.get(m.config.digest)!));
    assert.deepEqual(config.rootfs.diff_ids, [BASE_LAYER.diffId]);
  });

  await t.step("rig/base:docker: Docker v2s2 manifest, same config and layer", async () => {
    const oci = await pullAll(images.base);
    const docker = await pullAll(images.baseDocker);
    assert.equal(docker.manifest.mediaType, DOCKER_MANIFEST);
    assert.equal(docker.m.config.digest, oci.m.config.digest);
    assert.equal(docker.m.layers[0].digest, BASE_LAYER.blob);
  });

  await t.step("rig/layered:1: whiteout and opaque-dir layers (checked with tar)", async () => {
    const { m, blobs } = await pullAll(images.layered);
    assert.equal(m.layers.length, 4);
    assert.equal(m.layers[0].digest, BASE_LAYER.blob);
    const listing = async (digest: string) => {
      const f = `${dir.path}/layer.tgz`;
      await Deno.writeFile(f, blobs.get(digest)!);
      return (await run("tar", ["-tzf", f])).split("\n");
    };
    assert.ok((await listing(m.layers[1].digest)).includes("data/.wh.to-delete"));
    const third = await listing(m.layers[2].digest);
    assert.ok(third.includes("data/dir-to-opaque/.wh..wh..opq"), third.join(","));
    assert.ok(third.includes("data/dir-to-opaque/z"));
    assert.ok((await listing(m.layers[3].digest)).includes("data/extra/added.txt"));
  });

  await t.step("rig/multi:1: index resolved for amd64 and arm64", async () => {
    const amd = await pullAll(images.multi, { os: "linux", architecture: "amd64" });
    assert.equal(amd.index?.mediaType, OCI_INDEX);
    assert.equal(amd.index?.digest, images.digests[images.multi]);
    assert.equal(amd.manifest.digest, images.digests[images.base]);
    const arm = await pullAll(images.multi, { os: "linux", architecture: "arm64" });
    assert.equal(arm.manifest.digest, images.digests[images.arm64]);
    const config = JSON.parse(new TextDecoder().decode(arm.blobs.get(arm.m.config.digest)!));
    assert.equal(config.architecture, "arm64");
    await assert.rejects(() => pullAll(images.multi, { os: "linux", architecture: "riscv64" }), {
      message:
        `${images.multi}: no image for platform linux/riscv64 in the index (available: linux/amd64, linux/arm64)`,
    });
  });

  await t.step("missing tag and missing repository are one-line 404 errors", async () => {
    const c = await RegistryClient.open(`${reg.host}/rig/base:nope`, BASE_OPTS);
    await assert.rejects(() => c.getManifest(), {
      message: `${reg.host}/rig/base:nope: manifest unknown (HTTP 404: MANIFEST_UNKNOWN: manifest unknown)`,
    });
    const r = await RegistryClient.open(`${reg.host}/rig/nope:1`, BASE_OPTS);
    await assert.rejects(() => r.getManifest(), /rig\/nope:1: manifest unknown \(HTTP 404/);
  });

  const creds = { username: "rig", password: "rig-pass" };
  const authFile = `${dir.path}/auth.json`;
  const writeAuth = (host: string, password: string) =>
    Deno.writeTextFile(
      authFile,
      JSON.stringify({ auths: { [host]: { auth: btoa(`${creds.username}:${password}`) } } }),
    );

  for (const auth of ["htpasswd", "token"] as const) {
    await t.step(`${auth} auth: right, wrong and missing credentials`, async () => {
      await using sec = await startRegistry(dir.path, { auth, credentials: creds, dataDir: reg.dataDir });
      const ref = `${sec.host}/rig/base:1`;
      await writeAuth(sec.host, creds.password);
      const ok = await RegistryClient.open(ref, { ...BASE_OPTS, authFile });
      const m = await ok.getManifest();
      assert.equal(m.digest, images.digests[images.base]);
      const blob = await readAll(await ok.getBlob(json(m).layers[0]));
      assert.equal(sha256(blob), BASE_LAYER.blob);
      // A client on another thread, made from plain data (cloned as postMessage does): with the
      // authorization obtained so far, and without it (it authenticates by itself).
      const access = structuredClone(ok.access());
      assert.ok(access.authorization?.startsWith(auth === "token" ? "Bearer " : "Basic "));
      for (const a of [access, { ...access, authorization: undefined }]) {
        const other = RegistryClient.fromAccess(a);
        assert.equal(sha256(await readAll(await other.getBlob(json(m).layers[0]))), BASE_LAYER.blob);
      }
      await writeAuth(sec.host, "wrong");
      const bad = await RegistryClient.open(ref, { ...BASE_OPTS, authFile });
      const rejected = auth === "htpasswd"
        ? `${ref}: the registry rejected the credentials for ${sec.host} (HTTP 401)`
        : `${ref}: the token server ${new URL(sec.tokenRealm!).host} rejected the credentials (HTTP 401)`;
      await assert.rejects(() => bad.getManifest(), { message: rejected });
      const anon = await RegistryClient.open(ref, BASE_OPTS);
      await assert.rejects(
        () => anon.getManifest(),
        auth === "htpasswd" ? { message: `${ref}: authentication required (HTTP 401); log in or pass an auth file` } : {
          message: `${ref}: the token server ${new URL(sec.tokenRealm!).host} refused anonymous access (HTTP 401)`,
        },
      );
    });
  }

  // 64 MiB of random data: far more than socket buffers hold, so the kill lands mid-transfer.
  const big = randomBytes(64 << 20);
  const bigBlob = await uploadBlob(reg.host, "rig/big", big);

  await t.step("registry killed mid-blob and restarted: the download resumes and verifies", async () => {
    const client = await RegistryClient.open(`${reg.host}/rig/big:x`, {
      ...BASE_OPTS,
      retry: { attempts: 8, baseDelayMs: 200, maxDelayMs: 1000 },
    });
    const reader = (await client.getBlob(bigBlob)).getReader();
    const first = await reader.read();
    assert.ok(!first.done && first.value.length < bigBlob.size);
    await reg.stop("SIGKILL");
    await reg.restart();
    const hash = createHash("sha256").update(first.value!);
    let total = first.value!.length;
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      hash.update(r.value);
      total += r.value.length;
    }
    assert.equal(total, bigBlob.size);
    assert.equal(`sha256:${hash.digest("hex")}`, bigBlob.digest);
    // The restarted registry served the rest as a partial (206) answer: the transfer was resumed.
    const gets = (await Deno.readTextFile(reg.logFile)).split("\n")
      .filter((l) => l.includes(`"GET /v2/rig/big/blobs/${bigBlob.digest} HTTP/1.1"`));
    assert.ok(gets.some((l) => /" 206 \d+ /.test(l)), `no 206 answer in the access log:\n${gets.join("\n")}`);
  });

  await t.step("registry killed mid-blob and gone: a clear error naming the blob and the bytes", async () => {
    const client = await RegistryClient.open(`${reg.host}/rig/big:x`, {
      ...BASE_OPTS,
      retry: { attempts: 3, baseDelayMs: 50, maxDelayMs: 100 },
    });
    const reader = (await client.getBlob(bigBlob)).getReader();
    await reader.read();
    await reg.stop("SIGKILL");
    await assert.rejects(
      async () => {
        for (;;) if ((await reader.read()).done) break;
      },
      new RegExp(
        `^Error: ${reg.host}/rig/big: blob ${bigBlob.digest}: connection lost after \\d+ of ${bigBlob.size} bytes$`,
      ),
    );
    await reg.restart();
  });
});
