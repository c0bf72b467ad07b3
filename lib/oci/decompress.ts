/**
 * Layer decompression streams: gzip (node:zlib, every member), zstd (libzstd through FFI, every
 * frame), or none; with a decompression-bomb guard on output size and compression ratio
 * (oci-and-boot.md §4.1, deno-notes.md §3).
 *
 * @module
 */
import { Readable } from "node:stream";
import { pipeline } from "node:stream";
import { createGunzip } from "node:zlib";
import { ZstdDecompressor } from "../../ffi/zstd.ts";
import { type Compression, layerCompression } from "./mediatype.ts";

/** Limits against decompression bombs. */
export interface DecompressLimits {
  /** Largest decompressed size in bytes. Default 64 GiB. */
  maxSize?: number;
  /**
   * Largest output:input ratio. Default 1100, above gzip's theoretical maximum (~1032:1), so
   * only pathological zstd streams trip it; set lower for untrusted sources.
   */
  maxRatio?: number;
  /** Output allowed before the ratio is checked (a small prefix can compress very well). Default 256 MiB. */
  ratioGrace?: number;
}

const DEFAULTS: Required<DecompressLimits> = { maxSize: 64 * 2 ** 30, maxRatio: 1100, ratioGrace: 256 << 20 };

/** The compression a blob's first bytes show: gzip (1f 8b), zstd (28 b5 2f fd), else none. */
export function detectCompression(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return "zstd";
  return "none";
}

class Guard {
  #lim: Required<DecompressLimits>;
  in = 0;
  out = 0;
  constructor(lim: DecompressLimits) {
    this.#lim = { ...DEFAULTS, ...lim };
  }
  check(n: number): void {
    this.out += n;
    if (this.out > this.#lim.maxSize) {
      throw new Error(
        `decompressed data exceeds the limit of ${this.#lim.maxSize} bytes (possible decompression bomb)`,
      );
    }
    if (this.out > this.#lim.ratioGrace && this.out > this.#lim.maxRatio * this.in) {
      throw new Error(
        `compression ratio above ${this.#lim.maxRatio}:1 (${this.out} bytes from ${this.in}; possible decompression bomb)`,
      );
    }
  }
}

async function* counted(src: AsyncIterable<Uint8Array>, g: Guard): AsyncGenerator<Uint8Array> {
  for await (const c of src) {
    g.in += c.length;
    yield c;
  }
}

async function* gunzip(src: AsyncIterable<Uint8Array>, g: Guard): AsyncGenerator<Uint8Array> {
  const gz = createGunzip({ chunkSize: 1 << 20 });
  const out = pipeline(Readable.from(counted(src, g), { objectMode: false }), gz, () => {});
  try {
    for await (const c of out as AsyncIterable<Uint8Array>) {
      g.check(c.length);
      // A plain view: Buffer#slice would not copy, surprising callers.
      yield new Uint8Array(c.buffer, c.byteOffset, c.length);
    }
  } catch (e) {
    const msg = (e as Error).message;
    if (/unexpected end of file/i.test(msg)) throw new Error("gzip data is truncated", { cause: e });
    if (/header check|invalid/i.test(msg)) throw new Error(`not valid gzip data: ${msg}`, { cause: e });
    throw e;
  } finally {
    gz.destroy();
  }
}

async function* unzstd(src: AsyncIterable<Uint8Array>, g: Guard): AsyncGenerator<Uint8Array> {
  const d = new ZstdDecompressor();
  try {
    for await (const c of counted(src, g)) {
      const parts: Uint8Array[] = [];
      d.push(c, (b) => void parts.push(b.slice()));
      for (const p of parts) {
        g.check(p.length);
        yield p;
      }
    }
    d.end();
  } finally {
    d.free();
  }
}

async function* plain(src: AsyncIterable<Uint8Array>, g: Guard): AsyncGenerator<Uint8Array> {
  for await (const c of counted(src, g)) {
    g.check(c.length);
    yield c;
  }
}

/**
 * Decompresses `src`; errors on corrupt or truncated input and when a limit is exceeded.
 *
 * @example
 * ```ts
 * for await (const c of decompress(await source.getBlob(layer), "gzip", { maxRatio: 200 })) tar.push(c);
 * ```
 */
export function decompress(
  src: AsyncIterable<Uint8Array>,
  compression: Compression,
  limits: DecompressLimits = {},
): AsyncGenerator<Uint8Array> {
  const g = new Guard(limits);
  switch (compression) {
    case "gzip":
      return gunzip(src, g);
    case "zstd":
      return unzstd(src, g);
    case "none":
      return plain(src, g);
  }
}

/** The first chunks of `src` until `n` bytes are seen (or it ends), and the whole stream again. */
async function peek(
  src: AsyncIterable<Uint8Array>,
  n: number,
): Promise<{ head: Uint8Array; all: AsyncIterable<Uint8Array> }> {
  const it = src[Symbol.asyncIterator]();
  const first: Uint8Array[] = [];
  let got = 0;
  while (got < n) {
    const r = await it.next();
    if (r.done) break;
    first.push(r.value);
    got += r.value.length;
  }
  const head = new Uint8Array(Math.min(n, got));
  let o = 0;
  for (const c of first) {
    if (o >= head.length) break;
    const k = Math.min(c.length, head.length - o);
    head.set(c.subarray(0, k), o);
    o += k;
  }
  async function* all() {
    yield* first;
    for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  }
  return { head, all: all() };
}

/**
 * Decompresses a tar layer blob. The media type must be a tar layer type (else an error naming
 * it); the compression actually used is taken from the data's magic bytes, as containers/image
 * does (docker-archive layers are labelled gzip but stored uncompressed).
 *
 * @example
 * ```ts
 * for await (const c of decompressLayer(await src.getBlob(desc), desc.mediaType)) tar.push(c);
 * ```
 */
export async function* decompressLayer(
  src: AsyncIterable<Uint8Array>,
  mediaType: string,
  limits: DecompressLimits = {},
): AsyncGenerator<Uint8Array> {
  layerCompression(mediaType);
  const { head, all } = await peek(src, 4);
  yield* decompress(all, detectCompression(head), limits);
}
