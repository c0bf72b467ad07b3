/**
 * Byte-array helpers shared by format code: the part of Deno's `@std/bytes` bootcfs needs (JSR
 * cannot be used here).
 *
 * @module
 */

/**
 * One new array holding `parts` back to back.
 *
 * @example
 * ```ts
 * concat([new Uint8Array([1]), new Uint8Array([2, 3])]); // Uint8Array [1, 2, 3]
 * ```
 */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * `buf` if it holds `need` bytes, else a new array of at least twice its size holding its first
 * `used` bytes: the growth step of buffers that are appended to.
 */
export function ensureCapacity(buf: Uint8Array<ArrayBuffer>, used: number, need: number): Uint8Array<ArrayBuffer> {
  if (need <= buf.length) return buf;
  const grown = new Uint8Array(Math.max(2 * buf.length, need));
  grown.set(buf.subarray(0, used));
  return grown;
}

/** All chunks of `src` as one array (chunks are copied, so sources may reuse their buffers). */
export async function collect(src: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of src) parts.push(c.slice());
  return concat(parts);
}

/**
 * The string with one char per byte of `bytes` (Latin-1), for up to some 64 KiB. `apply` and not a
 * spread: spreading a typed array walks its iterator, an allocation per byte, which the EROFS
 * writer paid 80 MiB of garbage for on a 19k-file image.
 */
export function charCodes(bytes: Uint8Array): string {
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}
