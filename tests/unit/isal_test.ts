/**
 * ffi/isal.ts IsalInflater: loads here (CI installs libisal2), and for any gzip input — several
 * members, padding, garbage, truncation, corruption — and any chunking of input and output gives
 * what the zlib-ng inflater gives: the same bytes, or an error from both. Without the library the
 * layer decompression falls back to zlib-ng.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { IsalInflater } from "../../ffi/isal.ts";
import { decompress } from "../../lib/oci/decompress.ts";
import type { Inflater } from "../../lib/runtime/inflater.ts";
import { GzipInflater } from "../../lib/runtime/zlib.ts";
import { gen } from "../helpers/oci.ts";

/** Inflates `data` fed in `chunk`-byte pieces into `outSize`-byte buffers: "ok <size> <sha256>" or "error". */
function inflateAll(z: Inflater, data: Uint8Array, chunk: number, outSize: number): string {
  const h = createHash("sha256");
  let total = 0;
  try {
    for (let o = 0; o < data.length; o += chunk) {
      if (z.ended) continue;
      z.setInput(data.subarray(o, o + chunk));
      for (const out = new Uint8Array(outSize);;) {
        const n = z.inflate(out);
        if (n === 0) break;
        total += n;
        h.update(out.subarray(0, n));
      }
    }
    z.finish();
    return `ok ${total} ${h.digest("hex")}`;
  } catch {
    return "error";
  } finally {
    z.close();
  }
}

Deno.test("IsalInflater: usable here, and agrees with zlib-ng on valid, padded, truncated and corrupt gzip", () => {
  assert.ok(IsalInflater.create(), "libisal2 is installed in CI and passes the self-test");
  let seed = 7;
  const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff) / 0x7fffffff;
  const int = (n: number) => Math.floor(rnd() * n);
  const outcomes = new Map<string, number>();
  for (let t = 0; t < 180; t++) {
    const members = Array.from({ length: 1 + int(3) }, (_, i) => gen(int(i === 0 ? 200_000 : 5_000), `m${t}.${i}`));
    let gz = new Uint8Array(members.flatMap((m) => [...gzipSync(m, { level: 1 + int(9) })]));
    const damage = t % 6;
    if (damage === 1) gz = gz.subarray(0, int(gz.length)); // truncated
    if (damage === 2) gz = new Uint8Array([...gz, 0, 0, 7]); // zero padding: ignored
    if (damage === 3) gz = new Uint8Array([...gz, 0x42, 0]); // garbage: an error
    if (damage === 4) (gz = gz.slice())[gz.length - 6] ^= 1; // CRC of the last member
    if (damage === 5) (gz = gz.slice())[int(gz.length)] ^= 1 << int(8); // a bit anywhere
    // Tiny input pieces only over short streams: every piece is a call into each library.
    const chunk = 1 + int(rnd() < 0.3 && gz.length < 20_000 ? 40 : 70_000);
    const outSize = 1 + int(rnd() < 0.3 ? 100 : 1 << 20);
    const want = inflateAll(new GzipInflater(), gz, chunk, outSize);
    const got = inflateAll(IsalInflater.create()!, gz, chunk, outSize);
    assert.equal(got, want, `case ${t} (damage ${damage}, input chunks ${chunk}, output buffers ${outSize})`);
    const kind = `${damage}:${want.split(" ")[0]}`;
    if (chunk <= 41) outcomes.set("tiny", (outcomes.get("tiny") ?? 0) + 1);
    outcomes.set(kind, (outcomes.get(kind) ?? 0) + 1);
  }
  // The cases cover what they are meant to: clean and padded streams decode, garbage and bad CRCs
  // fail, and some streams come a few bytes at a time.
  for (const k of ["0:ok", "2:ok", "3:error", "4:error", "1:error", "tiny"]) assert.ok(outcomes.get(k), `no case ${k}`);
});

Deno.test("BOOTCFS_NO_ISAL=1: no ISA-L, and gzip layers still decompress (zlib-ng)", async () => {
  const code = `
    import { IsalInflater } from "${new URL("../../ffi/isal.ts", import.meta.url)}";
    import { decompress } from "${new URL("../../lib/oci/decompress.ts", import.meta.url)}";
    import { gzipSync } from "node:zlib";
    const gz = gzipSync(new Uint8Array(2_500_000).map((_, i) => ((i * 7919) >> 5) & 255));
    const src = (async function* () { for (let o = 0; o < gz.length; o += 4093) yield gz.slice(o, o + 4093); })();
    const sizes = [];
    for await (const c of decompress(src, "gzip")) sizes.push(c.length);
    console.log(IsalInflater.create() === null, sizes.join(","));`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", code],
    env: { BOOTCFS_NO_ISAL: "1" },
  }).output();
  assert.equal(new TextDecoder().decode(out.stderr), "");
  // Output buffers filled across input pieces, as with ISA-L (oci_source_test).
  assert.equal(new TextDecoder().decode(out.stdout).trim(), "true 1048576,1048576,402848");
  // And with the library, decompress() gives the same.
  let n = 0;
  const src = (async function* () {
    yield new Uint8Array(gzipSync(new Uint8Array(100_000).fill(7)));
  })();
  for await (const c of decompress(src, "gzip")) n += c.length;
  assert.equal(n, 100_000);
});
