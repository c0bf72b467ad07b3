/**
 * Stall timeouts of the registry client: a body that stops mid-way with the connection left open,
 * a registry that accepts but answers late or never. Every wait is bounded; a stall is resumed
 * with `Range` like a cut connection, or reported naming the blob and the bytes.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { MediaType } from "../../lib/oci/mediatype.ts";
import { RegistryClient, type RegistryClientOptions } from "../../lib/registry/mod.ts";
import { type FakeRegistry, fakeRegistry } from "../helpers/fake_registry.ts";
import { randomBytes } from "../helpers/oci.ts";

const OPTS: RegistryClientOptions = {
  tlsVerify: false,
  authEnv: {},
  retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 },
  timeouts: { headersMs: 300, idleMs: 300 },
};
const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

function layerImage(reg: FakeRegistry, size: number) {
  const bytes = randomBytes(size);
  const layer = reg.addBlob("rig/img", bytes);
  reg.addManifest("rig/img", MediaType.ociManifest, {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...reg.addBlob("rig/img", new Uint8Array(2)) },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layer }],
  }, ["1"]);
  return { layer, path: `/v2/rig/img/blobs/${layer.digest}` };
}

Deno.test("a blob body that stalls with the connection open is resumed after the idle timeout", async () => {
  await using reg = fakeRegistry();
  const { layer, path } = layerImage(reg, 1 << 20);
  reg.faults.push({ path, stallAfter: 200_000 });
  const client = await RegistryClient.open(`${reg.host}/rig/img:1`, OPTS);
  const t0 = performance.now();
  const bytes = new Uint8Array(await new Response(await client.getBlob(layer)).arrayBuffer());
  const elapsed = performance.now() - t0;
  assert.equal(sha256(bytes), layer.digest);
  assert.ok(elapsed >= 290 && elapsed < 5000, `took ${elapsed} ms`);
  const gets = reg.requests.filter((r) => r.path === path);
  assert.deepEqual(gets.map((r) => r.range), [null, "bytes=200000-"]);
});

Deno.test("a blob that stalls on every try fails naming the blob, the stall and the bytes", async () => {
  await using reg = fakeRegistry();
  const { layer, path } = layerImage(reg, 100_000);
  for (let i = 0; i < 4; i++) reg.faults.push({ path, stallAfter: i === 0 ? 1000 : 0 });
  const client = await RegistryClient.open(`${reg.host}/rig/img:1`, OPTS);
  await assert.rejects(async () => await new Response(await client.getBlob(layer)).arrayBuffer(), {
    message:
      `${reg.host}/rig/img: blob ${layer.digest}: stalled (nothing received for 0.3 s) after 1000 of 100000 bytes`,
  });
});

Deno.test("late response headers are retried; a registry that never answers is a clear error", async () => {
  await using reg = fakeRegistry();
  const { layer, path } = layerImage(reg, 50_000);
  reg.faults.push({ path, delayMs: 2000 });
  const client = await RegistryClient.open(`${reg.host}/rig/img:1`, OPTS);
  const bytes = new Uint8Array(await new Response(await client.getBlob(layer)).arrayBuffer());
  assert.equal(sha256(bytes), layer.digest);
  assert.equal(reg.requests.filter((r) => r.path === path).length, 2);

  for (let i = 0; i < 3; i++) reg.faults.push({ path: "/v2/rig/img/manifests/1", delayMs: 2000 });
  await assert.rejects(() => client.getManifest(), {
    message: `${reg.host}/rig/img:1: http://${reg.host} did not answer within 0.3 s`,
  });
});

Deno.test("a listener that accepts connections and never speaks does not hang the client", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of listener) held.push(c);
  })();
  try {
    const client = await RegistryClient.open(`127.0.0.1:${port}/rig/img:1`, OPTS);
    const t0 = performance.now();
    await assert.rejects(() => client.getManifest(), {
      message: `127.0.0.1:${port}/rig/img:1: http://127.0.0.1:${port} did not answer within 0.3 s`,
    });
    assert.ok(performance.now() - t0 < 5000);
    assert.equal(held.length, 3);
  } finally {
    listener.close();
    await accepting.catch(() => {});
    for (const c of held) c.close();
  }
});
