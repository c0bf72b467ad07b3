/**
 * ffi/crypto.ts Sha256Stream: libcrypto's SHA-256 updated on an FFI thread equals node:crypto's,
 * for any chunking; one update at a time.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Sha256Stream } from "../../ffi/crypto.ts";
import { gen } from "../helpers/oci.ts";

Deno.test("Sha256Stream: equals node:crypto for empty input and any chunking", async () => {
  const all = gen(3_000_001, "sha256 stream");
  for (const size of [0, 1, 63, 64, 4096, 1 << 20]) {
    // Small chunks over a short prefix: each update is a round trip to another thread.
    const data = size < 4096 ? all.subarray(0, 20_011) : all;
    const s = Sha256Stream.create()!;
    assert.ok(s, "libcrypto is there in CI");
    if (size > 0) { for (let o = 0; o < data.length; o += size) await s.update(data.subarray(o, o + size)); }
    const want = createHash("sha256").update(size > 0 ? data : new Uint8Array()).digest("hex");
    assert.equal(s.hex(), want, `chunks of ${size}`);
  }
});

Deno.test("Sha256Stream: a second update while one runs is refused; free waits for it", async () => {
  const s = Sha256Stream.create()!;
  const first = s.update(gen(1 << 20, "a"));
  await assert.rejects(s.update(new Uint8Array(1)), /still running/);
  s.free(); // deferred until the running update has resolved
  await first;
});
