import assert from "node:assert/strict";
import { charCodes, collect, concat, ensureCapacity } from "../../lib/bytes/mod.ts";
import { toHex } from "../../lib/fsverity/digest.ts";

Deno.test("charCodes: one char per byte, every byte value, up to 64 KiB", () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const s = charCodes(all);
  assert.equal(s.length, 256);
  for (let i = 0; i < 256; i++) assert.equal(s.charCodeAt(i), i);
  const big = new Uint8Array(65536).map((_, i) => (i * 7) & 0xff);
  const t = charCodes(big);
  assert.equal(t.length, big.length);
  assert.ok([...big].every((b, i) => t.charCodeAt(i) === b));
  assert.equal(charCodes(new Uint8Array(0)), "");
  // A view: only its own bytes.
  assert.equal(charCodes(all.subarray(65, 68)), "ABC");
});

Deno.test("toHex: every byte value, views, and inputs longer than one 4 KiB part", () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const expected = Array.from(all, (b) => b.toString(16).padStart(2, "0")).join("");
  assert.equal(toHex(all), expected);
  assert.equal(toHex(all.subarray(254)), "feff");
  const long = new Uint8Array(10000).map((_, i) => (i * 31) & 0xff);
  assert.equal(toHex(long), Array.from(long, (b) => b.toString(16).padStart(2, "0")).join(""));
  // Calls share a scratch buffer: a short call after a long one sees nothing of it.
  assert.equal(toHex(new Uint8Array([0xab])), "ab");
});

Deno.test("concat and collect join chunks in order, copying them", async () => {
  const a = new Uint8Array([1, 2]);
  assert.deepEqual(concat([a, new Uint8Array(0), new Uint8Array([3])]), new Uint8Array([1, 2, 3]));
  const reused = new Uint8Array([9]);
  const src = (async function* () {
    yield reused;
    reused[0] = 8; // a source reusing its buffer once the consumer asked for more
    yield reused;
  })();
  assert.deepEqual(await collect(src), new Uint8Array([9, 8]));
});

Deno.test("ensureCapacity: the same array while it fits, else one at least twice as large with the used bytes", () => {
  const buf = new Uint8Array(8).fill(7);
  assert.equal(ensureCapacity(buf, 8, 8), buf);
  const doubled = ensureCapacity(buf, 5, 9);
  assert.equal(doubled.length, 16);
  assert.deepEqual([...doubled.subarray(0, 6)], [7, 7, 7, 7, 7, 0]);
  assert.equal(ensureCapacity(buf, 8, 100).length, 100);
});
