/**
 * Layer import (oci-and-boot.md §4.3, §4.5): the layer splitstream verity pinned upstream
 * (composefs-formats.md §3.7 alpha/beta/gamma), the 64-byte boundary, trailing bytes, diff_id
 * verification, and the already-present short cut.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { importLayer } from "../../lib/oci/layer_import.ts";
import { parseDigest } from "../../lib/oci/digest.ts";
import { buildTar } from "../../lib/tar/mod.ts";
import type { Repository } from "../../lib/repository/mod.ts";
import { gen, rustTarLayer, sha256, tempRepository } from "../helpers/oci.ts";

async function* chunks(data: Uint8Array, size = 777): AsyncGenerator<Uint8Array> {
  for (let o = 0; o < data.length; o += size) yield data.slice(o, o + size);
}

// deno-lint-ignore require-yield
async function* poisoned(): AsyncGenerator<Uint8Array> {
  throw new Error("must not be read");
}

/** The verity of a layer stream as stored (read through the repository's own object file). */
function streamVerity(repo: Repository, diffId: string): string {
  return repo.hasStream(`oci-layer-${diffId}`)!;
}

async function cat(repo: Repository, name: string): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const sink = new WritableStream<Uint8Array>({ write: (c) => void parts.push(c) });
  const w = sink.getWriter();
  await repo.catStream(name, w);
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, o), o += p.length;
  return out;
}

Deno.test("layer import: alpha/beta/gamma layer splitstreams have the verities pinned upstream", async () => {
  using tmp = tempRepository("sha256");
  const repo = tmp.repo;
  const cases: [string, number, string, string][] = [
    [
      "alpha",
      1000,
      "757d6903198804b6ed96421a93a9973f5facc0e445a2a6c61cb0129eb67026e2",
      "61c07629b8a41273f190744a8545c132e6b784dcb2235bb31ade307a83e092ff",
    ],
    [
      "beta",
      2000,
      "77dd145166ef191089dabd4d2c52d32143850a3c81a074fedf48dca360e2dcb9",
      "ce472620ab69da46e385b0936865ef22f940e6bf55a083d3be37b1003795e221",
    ],
    [
      "gamma",
      3000,
      "9b57f0e91c403b650e9391fd5e4154cac5dc1469acc0f3312e6149aa34f160ef",
      "99ce11df4bb808a1e80ce69425dae527b64aa7a270bf99c4a6e24d66be270f3f",
    ],
  ];
  for (const [name, size, diffHex, verity] of cases) {
    const tar = rustTarLayer(name, size);
    assert.deepEqual(sha256(tar), `sha256:${diffHex}`, `${name}: the hand-built tar is the upstream one`);
    const r = await importLayer(repo, parseDigest(`sha256:${diffHex}`), chunks(tar));
    assert.deepEqual(r.id, verity, name);
    assert.deepEqual(streamVerity(repo, `sha256:${diffHex}`), verity);
    assert.deepEqual(r.stats.objectsCopied + r.stats.objectsAlreadyPresent, 1);
  }
});

Deno.test("layer import: 64 bytes inline, 65 external; trailing garbage kept; cat reproduces the tar", async () => {
  using tmp = tempRepository("sha512");
  const repo = tmp.repo;
  const tar0 = buildTar([
    { entry: { path: "d", kind: "dir" } },
    { entry: { path: "d/s64", kind: "file" }, data: gen(64, "s64") },
    { entry: { path: "d/s65", kind: "file" }, data: gen(65, "s65") },
    { entry: { path: "d/big", kind: "file" }, data: gen(300_000, "big") },
    { entry: { path: "d/l", kind: "symlink", linkTarget: "s65" } },
  ]);
  const tar = new Uint8Array(tar0.length + 700);
  tar.set(tar0);
  tar.set(gen(700, "junk"), tar0.length);
  const diffId = parseDigest(sha256(tar));
  const r = await importLayer(repo, diffId, chunks(tar, 4096));
  assert.deepEqual(r.alreadyPresent, false);
  const s = repo.openStream(`oci-layer-${diffId}`);
  assert.deepEqual(s.objectRefs.length, 2, "s65 and big are objects, s64 is inline");
  const sizes = s.objectRefs.map((id) => repo.readObject(id).length).sort((a, b) => a - b);
  assert.deepEqual(sizes, [65, 300_000]);
  assert.deepEqual(r.stats.layers, 1);
  assert.deepEqual(sha256(await cat(repo, `oci-layer-${diffId}`)), diffId);
  assert.deepEqual(s.streamSize, tar.length);
});

Deno.test("layer import: a diff_id mismatch is an error and registers nothing", async () => {
  using tmp = tempRepository();
  const repo = tmp.repo;
  const tar = buildTar([{ entry: { path: "f", kind: "file" }, data: gen(5000, "f") }]);
  const wrong = parseDigest(`sha256:${"ab".repeat(32)}`);
  await assert.rejects(
    () => importLayer(repo, wrong, chunks(tar)),
    (e: Error) => e.message.includes("diff_id mismatch"),
  );
  assert.deepEqual(repo.hasStream(`oci-layer-${wrong}`), null);
  assert.deepEqual(repo.listRefs("streams").length, 0);
});

Deno.test("layer import: a present layer is not read again; a name is still created", async () => {
  using tmp = tempRepository();
  const repo = tmp.repo;
  const tar = buildTar([{ entry: { path: "f", kind: "file" }, data: gen(100, "f") }]);
  const diffId = parseDigest(sha256(tar));
  const first = await importLayer(repo, diffId, chunks(tar));
  const again = await importLayer(repo, diffId, poisoned(), { name: "layers/f" });
  assert.deepEqual(again, { id: first.id, alreadyPresent: true, stats: { ...again.stats, layersAlreadyPresent: 1 } });
  assert.deepEqual(repo.resolve("streams", "refs/layers/f")?.id, first.id);
});

Deno.test("layer import: a corrupt tar (bad header checksum) is refused, nothing registered", async () => {
  using tmp = tempRepository();
  const repo = tmp.repo;
  const tar = buildTar([{ entry: { path: "f", kind: "file" }, data: gen(100, "f") }]);
  tar[148] ^= 1;
  const diffId = parseDigest(sha256(tar));
  await assert.rejects(() => importLayer(repo, diffId, chunks(tar)), (e: Error) => e.message.includes("checksum"));
  assert.deepEqual(repo.hasStream(`oci-layer-${diffId}`), null);
});

Deno.test("layer import: the diff_id covers every byte (a truncated stream fails)", async () => {
  using tmp = tempRepository();
  const repo = tmp.repo;
  const tar = buildTar([{ entry: { path: "f", kind: "file" }, data: gen(3000, "f") }]);
  const diffId = parseDigest(sha256(tar));
  await assert.rejects(() => importLayer(repo, diffId, chunks(tar.subarray(0, 1600))));
  assert.deepEqual(repo.hasStream(`oci-layer-${diffId}`), null);
  assert.deepEqual(createHash("sha256").update(tar).digest("hex"), diffId.slice(7));
});
