/**
 * Layer decompression streams: gzip (ISA-L's igzip through FFI where libisal2 is installed, else
 * Deno's zlib-ng; every member), zstd (libzstd through FFI, every frame), or none; with a
 * decompression-bomb guard on output size and compression ratio (oci-and-boot.md §4.1,
 * deno-notes.md §3).
 *
 * @module
 */
import type { Inflater } from "../runtime/inflater.ts";
import { GzipInflater } from "../runtime/zlib.ts";
import { IsalInflater } from "../../ffi/isal.ts";
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

/** How the output is handed out. */
export interface DecompressOptions {
  /**
   * Write the output into a small ring of buffers instead of a fresh buffer per chunk: a yielded
   * chunk stays valid only until the consumer asks for the second chunk after it. Keeps peak
   * memory low (dead 1 MiB buffers otherwise pile up until V8 collects them) for a consumer that
   * is done with each chunk by then; default false (chunks are never reused).
   */
  reuseBuffers?: boolean;
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

/**
 * Output chunk sizes. zstd's are smaller: its decoder already holds a window of up to 8 MiB per
 * layer in flight. On a zstd copy of the Debian bench image (direct pull), 256 KiB chunks instead
 * of 128 KiB took 5% off the CPU time at 136 MiB peak (+2); 1 MiB chunks saved ~2% more but
 * peaked at 146 MiB, over the 150 MB bound.
 */
const GZIP_CHUNK = 1 << 20, ZSTD_CHUNK = 256 << 10;

/**
 * Output buffers of `size` bytes: fresh ones, or with `reuse` a ring of three, so that a chunk is
 * overwritten only once the consumer has asked for the second one after it.
 */
function outputBuffers(size: number, reuse: boolean): () => Uint8Array {
  if (!reuse) return () => new Uint8Array(size);
  const ring: Uint8Array[] = [];
  let i = 0;
  return () => {
    const b = ring[i] ??= new Uint8Array(size);
    i = (i + 1) % 3;
    return b;
  };
}

/**
 * The output of `z` in chunks of `size` bytes (the last one shorter): each output buffer is filled
 * from as many input chunks as it takes, so a registry body's 64 KiB pieces (or zstd's 128 KiB
 * blocks) do not become small output chunks, each paying the per-chunk costs of every stage after
 * this one (5% of a pull's CPU). Every member or frame is decoded; for gzip, zero padding after
 * the last member is still read (so that the blob is verified) and ignored.
 */
async function* inflateAll(
  src: AsyncIterable<Uint8Array>,
  z: Inflater,
  size: number,
  g: Guard,
  reuse: boolean,
): AsyncGenerator<Uint8Array> {
  const buffer = outputBuffers(size, reuse);
  let out: Uint8Array | null = null;
  let filled = 0;
  try {
    for await (const c of counted(src, g)) {
      if (z.ended) continue;
      z.setInput(c);
      for (;;) {
        out ??= buffer();
        const n = z.inflate(filled ? out.subarray(filled) : out);
        if (n === 0) break;
        g.check(n);
        filled += n;
        if (filled < out.length) continue;
        yield out;
        out = null;
        filled = 0;
      }
    }
    z.finish();
    if (filled) yield out!.subarray(0, filled);
  } finally {
    z.close();
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
  opts: DecompressOptions = {},
): AsyncGenerator<Uint8Array> {
  const g = new Guard(limits);
  const reuse = opts.reuseBuffers ?? false;
  switch (compression) {
    case "gzip":
      return inflateAll(src, IsalInflater.create() ?? new GzipInflater(), GZIP_CHUNK, g, reuse);
    case "zstd":
      return inflateAll(src, new ZstdDecompressor(), ZSTD_CHUNK, g, reuse);
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
  opts: DecompressOptions = {},
): AsyncGenerator<Uint8Array> {
  layerCompression(mediaType);
  const { head, all } = await peek(src, 4);
  yield* decompress(all, detectCompression(head), limits, opts);
}
