/**
 * Byte sources for the tar reader: a pull interface over async iterables and files, and a
 * buffered reader that hands out views of the source's chunks without copying.
 *
 * @module
 */

/** The default read size: 1 MiB, so hot loops do few, large reads. */
export const READ_SIZE = 1 << 20;

/**
 * A pull source of bytes. `read` returns a fresh chunk (never reused by the source afterwards) or
 * null at the end; `skip`, when present, moves forward without reading (a file seeks).
 */
export interface ByteSource {
  read(): Promise<Uint8Array | null>;
  skip?(n: number): Promise<void>;
}

/** A {@link ByteSource} over any async iterable of chunks (a `ReadableStream`, a generator). */
export function iterableSource(src: AsyncIterable<Uint8Array>): ByteSource {
  const it = src[Symbol.asyncIterator]();
  return {
    async read() {
      for (;;) {
        const r = await it.next();
        if (r.done) return null;
        if (r.value.length > 0) return r.value;
      }
    },
  };
}

/**
 * A {@link ByteSource} over an open file from its current position, reading `chunkSize` bytes at
 * a time and seeking on `skip`, optionally limited to `limit` bytes.
 *
 * @example
 * ```ts
 * using f = await Deno.open("layer.tar");
 * const src = fileSource(f);
 * ```
 */
export function fileSource(file: Deno.FsFile, opts: { chunkSize?: number; limit?: number } = {}): ByteSource {
  const chunkSize = opts.chunkSize ?? READ_SIZE;
  let left = opts.limit ?? Infinity;
  return {
    async read() {
      if (left <= 0) return null;
      const buf = new Uint8Array(Math.min(chunkSize, left));
      const n = await file.read(buf);
      if (n === null) return null;
      left -= n;
      return buf.subarray(0, n);
    },
    async skip(n: number) {
      const k = Math.min(n, left);
      const pos = await file.seek(k, Deno.SeekMode.Current);
      // Seeking past the end succeeds silently; a truncated file must not look like a clean end.
      if (pos > (await file.stat()).size || k < n) {
        throw new Error(`unexpected end of file (skipping to offset ${pos})`);
      }
      left -= k;
    },
  };
}

/** Async iterable over a file's bytes (or `length` bytes from `offset`), in fresh 1 MiB chunks. */
export async function* readFileChunks(
  path: string,
  opts: { offset?: number; length?: number; chunkSize?: number } = {},
): AsyncGenerator<Uint8Array> {
  using f = await Deno.open(path);
  if (opts.offset) await f.seek(opts.offset, Deno.SeekMode.Start);
  const src = fileSource(f, { chunkSize: opts.chunkSize, limit: opts.length });
  let got = 0;
  for (let c = await src.read(); c !== null; c = await src.read()) {
    got += c.length;
    yield c;
  }
  if (opts.length !== undefined && got < opts.length) {
    throw new Error(`${path}: unexpected end of file (wanted ${opts.length} bytes at offset ${opts.offset ?? 0})`);
  }
}

/**
 * Buffered reads over a {@link ByteSource}. Returned arrays are views into the source's chunks
 * where possible (copies only when a request straddles two chunks); `pos` is the absolute offset.
 */
export class ChunkReader {
  #src: ByteSource;
  #buf: Uint8Array = new Uint8Array(0);
  #off = 0;
  #pos = 0;

  constructor(src: ByteSource | AsyncIterable<Uint8Array>) {
    this.#src = "read" in src ? src : iterableSource(src);
  }

  /** Bytes consumed so far. */
  get pos(): number {
    return this.#pos;
  }

  /** Bytes buffered but not yet consumed. */
  get buffered(): number {
    return this.#buf.length - this.#off;
  }

  async #fill(): Promise<boolean> {
    const c = await this.#src.read();
    if (c === null) return false;
    // Node Buffers (from node:zlib) are viewed as plain Uint8Arrays: Buffer#slice does not copy.
    this.#buf = c.constructor === Uint8Array ? c : new Uint8Array(c.buffer, c.byteOffset, c.length);
    this.#off = 0;
    return true;
  }

  /**
   * Exactly `n` bytes, or null when the source ends before the first of them. A source that ends
   * part-way throws `what` as "unexpected end of …".
   */
  async readExact(n: number, what = "data"): Promise<Uint8Array | null> {
    if (this.#buf.length - this.#off >= n) {
      const r = this.#buf.subarray(this.#off, this.#off + n);
      this.#off += n;
      this.#pos += n;
      return r;
    }
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      if (this.#off >= this.#buf.length && !(await this.#fill())) {
        if (got === 0) return null;
        throw new Error(`unexpected end of archive in ${what} (offset ${this.#pos + got})`);
      }
      const k = Math.min(n - got, this.#buf.length - this.#off);
      out.set(this.#buf.subarray(this.#off, this.#off + k), got);
      this.#off += k;
      got += k;
    }
    this.#pos += n;
    return out;
  }

  /** Between 1 and `max` bytes without copying; throws at the end of the source. */
  async readSome(max: number, what = "data"): Promise<Uint8Array> {
    if (this.#off >= this.#buf.length && !(await this.#fill())) {
      throw new Error(`unexpected end of archive in ${what} (offset ${this.#pos})`);
    }
    const k = Math.min(max, this.#buf.length - this.#off);
    const r = this.#buf.subarray(this.#off, this.#off + k);
    this.#off += k;
    this.#pos += k;
    return r;
  }

  /** Moves `n` bytes forward, seeking when the source can. */
  async skip(n: number, what = "data"): Promise<void> {
    const inBuf = Math.min(n, this.#buf.length - this.#off);
    this.#off += inBuf;
    this.#pos += inBuf;
    let left = n - inBuf;
    if (left > 0 && this.#src.skip) {
      await this.#src.skip(left);
      this.#pos += left;
      return;
    }
    while (left > 0) left -= (await this.readSome(left, what)).length;
  }

  /** Everything left in the source, buffered bytes first. */
  async *rest(): AsyncGenerator<Uint8Array> {
    if (this.#off < this.#buf.length) {
      const r = this.#buf.subarray(this.#off);
      this.#off = this.#buf.length;
      this.#pos += r.length;
      yield r;
    }
    while (await this.#fill()) {
      this.#off = this.#buf.length;
      this.#pos += this.#buf.length;
      yield this.#buf;
    }
  }
}
