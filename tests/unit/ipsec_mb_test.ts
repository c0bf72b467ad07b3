/**
 * ffi/ipsec_mb.ts Sha512Lanes: used here wherever the CPU has AVX2 (CI installs libipsec-mb1), and
 * every batch, whatever its size, block size and offsets, hashes each block as SHA-512 does. The
 * fs-verity digests with and without it are compared with `fsverity digest` in
 * tests/integration/digest_test.ts.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Sha512Lanes } from "../../ffi/ipsec_mb.ts";

const avx2 = /^flags\s*:.*\bavx2\b/m.test(Deno.readTextFileSync("/proc/cpuinfo"));

Deno.test("Sha512Lanes: available exactly where the CPU has AVX2", () => {
  assert.equal(Sha512Lanes.create() !== null, avx2);
});

Deno.test("Sha512Lanes: batches of 0 to 70 blocks at odd offsets hash as SHA-512, block by block", () => {
  const lanes = Sha512Lanes.create();
  if (!lanes) return; // no AVX2: the previous test checked that this is why
  const data = new Uint8Array(80 * 4096 + 100);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
  for (const blockSize of [4096, 64, 1000]) {
    for (let count = 0; count <= 70; count += count < 10 ? 1 : 7) {
      const srcOffset = (count * 13) % 97, outOffset = count % 5;
      const out = new Uint8Array(outOffset + count * 64 + 3).fill(0xaa);
      lanes.hashBlocks(data, srcOffset, blockSize, count, out, outOffset);
      for (let i = 0; i < count; i++) {
        const at = srcOffset + i * blockSize;
        const want = createHash("sha512").update(data.subarray(at, at + blockSize)).digest("hex");
        const got = Buffer.from(out.subarray(outOffset + i * 64, outOffset + (i + 1) * 64)).toString("hex");
        assert.equal(got, want, `block ${i} of ${count} (${blockSize} bytes)`);
      }
      // Nothing written around the digests.
      assert.ok(out.subarray(0, outOffset).every((b) => b === 0xaa));
      assert.ok(out.subarray(outOffset + count * 64).every((b) => b === 0xaa));
    }
  }
});

Deno.test("Sha512Lanes: blocks or digests beyond their buffers are refused before anything is hashed", () => {
  const lanes = Sha512Lanes.create();
  if (!lanes) return;
  assert.throws(() => lanes.hashBlocks(new Uint8Array(8191), 0, 4096, 2, new Uint8Array(128), 0), RangeError);
  assert.throws(() => lanes.hashBlocks(new Uint8Array(8192), 0, 4096, 2, new Uint8Array(127), 0), RangeError);
});

Deno.test("BOOTCFS_NO_IPSEC_MB=1: no lanes", async () => {
  const code = `import { Sha512Lanes } from "${new URL("../../ffi/ipsec_mb.ts", import.meta.url)}";
    console.log(Sha512Lanes.create() === null);`;
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    env: { BOOTCFS_NO_IPSEC_MB: "1" },
  }).output();
  assert.equal(new TextDecoder().decode(r.stdout).trim(), "true", new TextDecoder().decode(r.stderr));
});
