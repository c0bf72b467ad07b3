// ffi/zstd.ts against the zstd CLI (an independent encoder/decoder) and composefs-formats.md §3.5.
import assert from "node:assert/strict";
import {
  zstdCompress,
  zstdCompressStream,
  zstdDecompress,
  ZstdDecompressor,
  zstdDecompressStream,
  zstdVersion,
} from "../../ffi/zstd.ts";
import { gen } from "../helpers/oci.ts";

async function zstdCli(args: string[], input: Uint8Array): Promise<Uint8Array> {
  const p = new Deno.Command("zstd", { args, stdin: "piped", stdout: "piped", stderr: "piped" }).spawn();
  const w = p.stdin.getWriter();
  await w.write(input);
  await w.close();
  const r = await p.output();
  if (r.code !== 0) throw new Error(`zstd ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
  return r.stdout;
}

const text = new TextEncoder().encode("composefs splitstream ".repeat(50_000));
const mixed = new Uint8Array([...gen(1_000_000, "random"), ...text, ...new Uint8Array(500_000)]);

function skippable(payload: number[]): Uint8Array {
  const b = new Uint8Array(8 + payload.length);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0x184d2a50, true);
  v.setUint32(4, payload.length, true);
  b.set(payload, 8);
  return b;
}

Deno.test("compression: frame shape of §3.5 (empty = 9-byte pledged frame, else no content size)", () => {
  assert.match(zstdVersion(), /^1\.\d+\.\d+$/);
  assert.deepEqual([...zstdCompress(new Uint8Array(0))], [0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x00, 0x01, 0x00, 0x00]);
  const c = zstdCompress(mixed);
  assert.deepEqual([...c.subarray(0, 5)], [0x28, 0xb5, 0x2f, 0xfd, 0x00]);
  assert.ok(c.length < mixed.length);
});

Deno.test("our frames decompress with the zstd CLI; chunking does not change the output", async () => {
  const c = zstdCompress(mixed);
  assert.deepEqual(await zstdCli(["-d", "-c"], c), mixed);
  const chunks: Uint8Array[] = [];
  const stream = ReadableStream.from((function* () {
    for (let o = 0; o < mixed.length; o += 77_777) yield mixed.slice(o, o + 77_777);
  })()).pipeThrough(zstdCompressStream());
  for await (const part of stream) chunks.push(part);
  assert.deepEqual(new Uint8Array(chunks.flatMap((x) => [...x])), c);
});

Deno.test("decompression: multiple frames, skippable frames anywhere, streamed in small pieces", async () => {
  const a = await zstdCli(["-3", "-c"], mixed);
  const b = zstdCompress(text);
  const all = new Uint8Array([...skippable([1, 2, 3]), ...a, ...skippable([]), ...b, ...skippable([9])]);
  assert.deepEqual(zstdDecompress(all), new Uint8Array([...mixed, ...text]));
  const out: Uint8Array[] = [];
  const s = ReadableStream.from((function* () {
    for (let o = 0; o < all.length; o += 1000) yield all.slice(o, o + 1000);
  })()).pipeThrough(zstdDecompressStream());
  for await (const part of s) out.push(part);
  assert.equal(out.reduce((n, p) => n + p.length, 0), mixed.length + text.length);
});

Deno.test("decompression: truncated and corrupt input are errors, never short output", async () => {
  const a = await zstdCli(["-3", "-c"], mixed);
  for (const cut of [5, 100, a.length - 1]) {
    assert.throws(() => zstdDecompress(a.subarray(0, cut)), /truncated input/, `cut at ${cut}`);
  }
  const bad = a.slice();
  bad[0] ^= 0xff;
  assert.throws(() => zstdDecompress(bad), /zstd decompress: Unknown frame descriptor/);
  const d = new ZstdDecompressor();
  let n = 0;
  d.push(a.subarray(0, 1000), (b) => void (n += b.length));
  assert.throws(() => d.finish(), /truncated/);
  d.close();
  assert.equal(zstdDecompress(new Uint8Array(0)).length, 0);
});
