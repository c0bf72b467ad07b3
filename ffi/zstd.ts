/**
 * Streaming zstd through the system libzstd (FFI).
 *
 * Compression drives `ZSTD_compressStream2` exactly as composefs-rs does for splitstreams
 * (composefs-formats.md §3.5): level 3, every write `ZSTD_e_continue`, the end `ZSTD_e_end` with no
 * new input, no pledged size, no checksum. Byte identity with composefs-rs additionally needs the
 * same libzstd version (1.5.7); {@link zstdVersion} says which one is loaded.
 *
 * Decompression accepts any sequence of frames, including skippable frames, and reports input
 * that ends inside a frame as truncated.
 *
 * @module
 */
import { concat } from "../lib/bytes/mod.ts";
import { Inflater } from "../lib/runtime/inflater.ts";

const lib = Deno.dlopen(
  "libzstd.so.1",
  {
    ZSTD_versionString: { parameters: [], result: "pointer" },
    ZSTD_createCCtx: { parameters: [], result: "pointer" },
    ZSTD_freeCCtx: { parameters: ["pointer"], result: "usize" },
    ZSTD_CCtx_setParameter: { parameters: ["pointer", "i32", "i32"], result: "usize" },
    ZSTD_compressStream2: { parameters: ["pointer", "buffer", "buffer", "i32"], result: "usize" },
    ZSTD_createDStream: { parameters: [], result: "pointer" },
    ZSTD_freeDStream: { parameters: ["pointer"], result: "usize" },
    ZSTD_decompressStream: { parameters: ["pointer", "buffer", "buffer"], result: "usize" },
    ZSTD_isError: { parameters: ["usize"], result: "u32" },
    ZSTD_getErrorName: { parameters: ["usize"], result: "pointer" },
  } as const,
);

const ZSTD_c_compressionLevel = 100;
const ZSTD_e_continue = 0, ZSTD_e_end = 2;
const OUT_SIZE = 1 << 17;

/** The version of the loaded libzstd, e.g. "1.5.4". */
export function zstdVersion(): string {
  return Deno.UnsafePointerView.getCString(lib.symbols.ZSTD_versionString()!);
}

function check(r: number | bigint, what: string): bigint {
  const v = BigInt(r);
  if (lib.symbols.ZSTD_isError(v)) {
    throw new Error(`zstd ${what}: ${Deno.UnsafePointerView.getCString(lib.symbols.ZSTD_getErrorName(v)!)}`);
  }
  return v;
}

function addr(b: Uint8Array): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
}

/** Receives output; the bytes are only valid during the call (copy them to keep them). */
export type OnOutput = (bytes: Uint8Array) => void;

/** `{ptr, size, pos}` as ZSTD_inBuffer / ZSTD_outBuffer. */
class ZBuffer {
  readonly raw = new BigUint64Array(3);
  #keep: Uint8Array = new Uint8Array(0);
  set(b: Uint8Array): void {
    this.#keep = b; // keep the memory alive while libzstd holds its address
    this.raw[0] = b.length ? addr(b) : 0n;
    this.raw[1] = BigInt(b.length);
    this.raw[2] = 0n;
  }
  get pos(): number {
    return Number(this.raw[2]);
  }
  get done(): boolean {
    return this.raw[2] >= this.raw[1];
  }
}

/**
 * A streaming compressor producing one frame. Feed with {@link push}, finish with {@link end}
 * (which also frees the context).
 */
export class ZstdCompressor {
  #cctx: Deno.PointerValue;
  #in = new ZBuffer();
  #out = new ZBuffer();
  #outBuf = new Uint8Array(OUT_SIZE);

  constructor(level = 3) {
    this.#cctx = lib.symbols.ZSTD_createCCtx();
    if (!this.#cctx) throw new Error("zstd: cannot create a compression context");
    check(lib.symbols.ZSTD_CCtx_setParameter(this.#cctx, ZSTD_c_compressionLevel, level), "set level");
  }

  #step(op: number, onOutput: OnOutput): bigint {
    if (!this.#cctx) throw new Error("zstd: compressor already finished");
    this.#out.set(this.#outBuf);
    const r = check(lib.symbols.ZSTD_compressStream2(this.#cctx, this.#out.raw, this.#in.raw, op), "compress");
    if (this.#out.pos > 0) onOutput(this.#outBuf.subarray(0, this.#out.pos));
    return r;
  }

  /** Compresses `chunk` (`ZSTD_e_continue`); empty chunks are ignored, as the Rust writer never sends them. */
  push(chunk: Uint8Array, onOutput: OnOutput): void {
    if (chunk.length === 0) return;
    this.#in.set(chunk);
    while (!this.#in.done) this.#step(ZSTD_e_continue, onOutput);
  }

  /** Ends the frame (`ZSTD_e_end`, no new input) and frees the context. */
  end(onOutput: OnOutput): void {
    this.#in.set(new Uint8Array(0));
    try {
      while (this.#step(ZSTD_e_end, onOutput) !== 0n) { /* more output pending */ }
    } finally {
      this.free();
    }
  }

  /** Frees the context without finishing (on error paths). Safe to call twice. */
  free(): void {
    if (this.#cctx) lib.symbols.ZSTD_freeCCtx(this.#cctx);
    this.#cctx = null;
  }
}

/**
 * A streaming decompressor for any number of frames (skippable ones included), as an
 * {@link Inflater}: {@link finish} throws when the input stopped inside a frame. It never
 * {@link Inflater.ended ends}: whatever follows a frame must be another frame.
 */
export class ZstdDecompressor extends Inflater {
  #ds: Deno.PointerValue;
  #in = new ZBuffer();
  #out = new ZBuffer();
  #outBuf = new Uint8Array(OUT_SIZE);
  /** An output buffer taken from `pieces`' provider that nothing was yielded from yet. */
  #unused: Uint8Array | null = null;
  #last = 0n;

  constructor() {
    super();
    this.#ds = lib.symbols.ZSTD_createDStream();
    if (!this.#ds) throw new Error("zstd: cannot create a decompression context");
  }

  override setInput(b: Uint8Array): void {
    super.setInput(b);
    this.#in.set(b);
  }

  /**
   * Decompresses into `out`: the bytes written, 0 once the input is used up and nothing is
   * buffered. Input that only ends a frame or skips one is consumed on the way.
   */
  inflate(out: Uint8Array): number {
    if (!this.#ds) throw new Error("zstd: decompressor already closed");
    if (out.length === 0) return 0;
    this.#out.set(out);
    for (;;) {
      const inPos = this.#in.pos;
      let r: bigint;
      try {
        r = check(lib.symbols.ZSTD_decompressStream(this.#ds, this.#out.raw, this.#in.raw), "decompress");
      } catch (e) {
        this.close();
        throw e;
      }
      this.offset = this.#in.pos;
      const produced = this.#out.pos;
      // 0 means a frame was completely decoded and flushed; remember the state of the last call that did work.
      if (produced > 0 || this.#in.pos !== inPos) this.#last = r;
      // With input left, call again: libzstd either progresses or fails (no forward progress).
      if (produced > 0 || this.#in.done) return produced;
    }
  }

  /** Throws if the input ended inside a frame. */
  finish(): void {
    if (this.#last !== 0n) throw new Error("zstd: truncated input (the data ends inside a frame)");
  }

  /**
   * Decompresses `chunk`, yielding each piece of output as a view of a buffer from `buffer`
   * (default: one internal buffer, overwritten by the next piece). `buffer` is called again only
   * after a piece was yielded (across calls too); pass the same `buffer` to every call on one
   * decompressor.
   */
  *pieces(chunk: Uint8Array, buffer: () => Uint8Array = () => this.#outBuf): Generator<Uint8Array> {
    this.setInput(chunk);
    for (;;) {
      const out = this.#unused ??= buffer();
      const n = this.inflate(out);
      if (n === 0) return;
      this.#unused = null;
      yield out.subarray(0, n);
    }
  }

  /** Decompresses `chunk`, calling `onOutput` for each piece of output (a view, valid during the call). */
  push(chunk: Uint8Array, onOutput: OnOutput): void {
    for (const p of this.pieces(chunk)) onOutput(p);
  }

  /** Frees the context. Safe to call twice. */
  close(): void {
    if (this.#ds) lib.symbols.ZSTD_freeDStream(this.#ds);
    this.#ds = null;
  }
}

/**
 * One frame of `data` made the streaming way (so the bytes match composefs-rs's writer, unlike a
 * one-shot compress that pledges the size).
 */
export function zstdCompress(data: Uint8Array, level = 3): Uint8Array {
  const parts: Uint8Array[] = [];
  const c = new ZstdCompressor(level);
  const keep = (b: Uint8Array) => void parts.push(b.slice());
  c.push(data, keep);
  c.end(keep);
  return concat(parts);
}

/** All frames of `data` decompressed; throws on corrupt or truncated input. */
export function zstdDecompress(data: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  const d = new ZstdDecompressor();
  try {
    d.push(data, (b) => void parts.push(b.slice()));
    d.finish();
  } finally {
    d.close();
  }
  return concat(parts);
}

/** {@link ZstdCompressor} as a TransformStream. */
export function zstdCompressStream(level = 3): TransformStream<Uint8Array, Uint8Array> {
  const c = new ZstdCompressor(level);
  return new TransformStream({
    transform(chunk, ctl) {
      c.push(chunk, (b) => ctl.enqueue(b.slice()));
    },
    flush(ctl) {
      c.end((b) => ctl.enqueue(b.slice()));
    },
    cancel() {
      c.free();
    },
  });
}

/** {@link ZstdDecompressor} as a TransformStream; errors on corrupt or truncated input. */
export function zstdDecompressStream(): TransformStream<Uint8Array, Uint8Array> {
  const d = new ZstdDecompressor();
  return new TransformStream({
    transform(chunk, ctl) {
      d.push(chunk, (b) => ctl.enqueue(b.slice()));
    },
    flush() {
      try {
        d.finish();
      } finally {
        d.close();
      }
    },
    cancel() {
      d.close();
    },
  });
}
