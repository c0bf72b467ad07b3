/**
 * CRC-64 as Go's `hash/crc64` computes it with the ISO table (`crc64.MakeTable(crc64.ISO)`), which
 * tar-split uses for file payload checksums: polynomial 0x1B reflected (0xD800000000000000),
 * initial value and final XOR all ones ("CRC-64/GO-ISO"). Pure code.
 *
 * @module
 */

// Slicing-by-8 tables as 32-bit halves: V8 has no fast unboxed 64-bit integers.
/** Whether a Uint32Array reads bytes little-endian, as the word loop of {@link Crc64.update} needs. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const NO_WORDS = new Uint32Array(0);
const T_LO: Uint32Array[] = [];
const T_HI: Uint32Array[] = [];

function makeTables(): void {
  const lo0 = new Uint32Array(256);
  const hi0 = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let lo = i;
    let hi = 0;
    for (let k = 0; k < 8; k++) {
      const bit = lo & 1;
      lo = ((lo >>> 1) | (hi << 31)) >>> 0;
      hi = hi >>> 1;
      if (bit) hi = (hi ^ 0xd8000000) >>> 0;
    }
    lo0[i] = lo;
    hi0[i] = hi;
  }
  T_LO.push(lo0);
  T_HI.push(hi0);
  for (let t = 1; t < 8; t++) {
    const lo = new Uint32Array(256);
    const hi = new Uint32Array(256);
    const plo = T_LO[t - 1], phi = T_HI[t - 1];
    for (let i = 0; i < 256; i++) {
      // One more zero byte through the table: crc' = T[crc & 0xff] ^ (crc >> 8).
      const idx = plo[i] & 0xff;
      lo[i] = (lo0[idx] ^ ((plo[i] >>> 8) | (phi[i] << 24))) >>> 0;
      hi[i] = (hi0[idx] ^ (phi[i] >>> 8)) >>> 0;
    }
    T_LO.push(lo);
    T_HI.push(hi);
  }
}
makeTables();

/**
 * Incremental CRC-64/GO-ISO.
 *
 * @example
 * ```ts
 * const c = new Crc64();
 * c.update(new TextEncoder().encode("added\n"));
 * c.digest(); // 61 43 62 d3 63 64 20 00 (big-endian, as tar-split stores it)
 * ```
 */
export class Crc64 {
  // The running register, already inverted (Go's `^crc` on entry and exit).
  #lo = 0xffffffff;
  #hi = 0xffffffff;

  /** Feeds more bytes. */
  update(data: Uint8Array): void {
    let lo = this.#lo, hi = this.#hi;
    const n = data.length;
    let i = 0;
    const [l0, l1, l2, l3, l4, l5, l6, l7] = T_LO;
    const [h0, h1, h2, h3, h4, h5, h6, h7] = T_HI;
    // Byte by byte up to a 4-byte boundary, then eight bytes as two little-endian words: two loads
    // instead of eight, 1.5–2.8× the speed (every byte of a unified pull's files passes here).
    for (; i < n && ((data.byteOffset + i) & 3) !== 0; i++) {
      const idx = (lo ^ data[i]) & 0xff;
      lo = l0[idx] ^ ((lo >>> 8) | (hi << 24));
      hi = h0[idx] ^ (hi >>> 8);
    }
    const count = LITTLE_ENDIAN && i < n ? ((n - i) >>> 3) * 2 : 0;
    const words = count ? new Uint32Array(data.buffer, data.byteOffset + i, count) : NO_WORDS;
    for (let j = 0; j < count; j += 2) {
      const a = lo ^ words[j];
      const b = hi ^ words[j + 1];
      lo = l7[a & 0xff] ^ l6[(a >>> 8) & 0xff] ^ l5[(a >>> 16) & 0xff] ^ l4[a >>> 24] ^
        l3[b & 0xff] ^ l2[(b >>> 8) & 0xff] ^ l1[(b >>> 16) & 0xff] ^ l0[b >>> 24];
      hi = h7[a & 0xff] ^ h6[(a >>> 8) & 0xff] ^ h5[(a >>> 16) & 0xff] ^ h4[a >>> 24] ^
        h3[b & 0xff] ^ h2[(b >>> 8) & 0xff] ^ h1[(b >>> 16) & 0xff] ^ h0[b >>> 24];
    }
    for (i += count * 4; i < n; i++) {
      const idx = (lo ^ data[i]) & 0xff;
      lo = l0[idx] ^ ((lo >>> 8) | (hi << 24));
      hi = h0[idx] ^ (hi >>> 8);
    }
    this.#lo = lo >>> 0;
    this.#hi = hi >>> 0;
  }

  /** The checksum as 8 big-endian bytes (tar-split's encoding). */
  digest(): Uint8Array {
    const out = new Uint8Array(8);
    const v = new DataView(out.buffer);
    v.setUint32(0, ~this.#hi >>> 0);
    v.setUint32(4, ~this.#lo >>> 0);
    return out;
  }

  /** The checksum as an unsigned 64-bit integer. */
  value(): bigint {
    return (BigInt(~this.#hi >>> 0) << 32n) | BigInt(~this.#lo >>> 0);
  }
}

/** CRC-64/GO-ISO of `data` as 8 big-endian bytes. */
export function crc64(data: Uint8Array): Uint8Array {
  const c = new Crc64();
  c.update(data);
  return c.digest();
}
