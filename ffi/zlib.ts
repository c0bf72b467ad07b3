/**
 * gzip decompression through the system zlib (FFI), with `inflate` run on an FFI worker thread:
 * node:zlib in Deno inflates on the main thread, where an import also parses, hashes and stores.
 * Here the caller can start the next `inflate` and handle the previous output meanwhile.
 *
 * @module
 */

const lib = Deno.dlopen(
  "libz.so.1",
  {
    zlibVersion: { parameters: [], result: "pointer" },
    inflateInit2_: { parameters: ["buffer", "i32", "pointer", "i32"], result: "i32" },
    inflate: { parameters: ["buffer", "i32"], result: "i32", nonblocking: true },
    inflateReset: { parameters: ["buffer"], result: "i32" },
    inflateEnd: { parameters: ["buffer"], result: "i32" },
  } as const,
);

const Z_OK = 0, Z_STREAM_END = 1, Z_BUF_ERROR = -5, Z_NO_FLUSH = 0;
/** sizeof(z_stream) on 64-bit Linux; the offsets below are its fields. */
const STREAM_SIZE = 112;
const NEXT_IN = 0, AVAIL_IN = 8, NEXT_OUT = 24, AVAIL_OUT = 32, MSG = 48;
/** windowBits 15 (32 KiB) + 16: gzip wrapper only. */
const GZIP_WINDOW = 15 + 16;
const VERSION = lib.symbols.zlibVersion();

function addr(b: Uint8Array): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
}

/**
 * One gzip member at a time ({@link reset} for the next). Input set with {@link setInput} must stay
 * untouched until consumed; only one {@link inflate} may run at a time.
 */
export class GzipInflater {
  #strm = new Uint8Array(STREAM_SIZE);
  #v = new DataView(this.#strm.buffer);
  /** The input and output zlib holds addresses of, kept alive here. */
  #in: Uint8Array = new Uint8Array(0);
  #out: Uint8Array = new Uint8Array(0);
  #live = true;
  /** The inflate call running on the worker thread, if any. */
  #running: Promise<number> | null = null;

  constructor() {
    const r = lib.symbols.inflateInit2_(this.#strm, GZIP_WINDOW, VERSION, STREAM_SIZE);
    if (r !== Z_OK) throw new Error(`zlib: inflateInit2 failed (${r})`);
  }

  /** Input bytes not yet consumed. */
  get availIn(): number {
    return this.#v.getUint32(AVAIL_IN, true);
  }

  /** The next unconsumed input byte (availIn must be > 0). */
  get nextByte(): number {
    return this.#in[this.#in.length - this.availIn];
  }

  /** Hands zlib the next piece of compressed input. */
  setInput(b: Uint8Array): void {
    this.#in = b;
    this.#v.setBigUint64(NEXT_IN, b.length ? addr(b) : 0n, true);
    this.#v.setUint32(AVAIL_IN, b.length, true);
  }

  /**
   * Inflates into `out` on a worker thread: the bytes written, and whether the member ended.
   * 0 bytes without the end means more input is needed.
   */
  async inflate(out: Uint8Array): Promise<{ n: number; end: boolean }> {
    if (!this.#live || this.#running) throw new Error("zlib: inflater freed or busy");
    this.#out = out;
    this.#v.setBigUint64(NEXT_OUT, addr(out), true);
    this.#v.setUint32(AVAIL_OUT, out.length, true);
    this.#running = lib.symbols.inflate(this.#strm, Z_NO_FLUSH);
    let r: number;
    try {
      r = await this.#running;
    } finally {
      this.#running = null;
    }
    const n = out.length - this.#v.getUint32(AVAIL_OUT, true);
    if (r === Z_OK || r === Z_STREAM_END || (r === Z_BUF_ERROR && this.availIn === 0)) {
      return { n, end: r === Z_STREAM_END };
    }
    const msg = this.#v.getBigUint64(MSG, true);
    const text = msg ? Deno.UnsafePointerView.getCString(Deno.UnsafePointer.create(msg)!) : `error ${r}`;
    throw new Error(`not valid gzip data: ${text}`);
  }

  /** Starts the next member (after `end`), keeping the unconsumed input. */
  reset(): void {
    const r = lib.symbols.inflateReset(this.#strm);
    if (r !== Z_OK) throw new Error(`zlib: inflateReset failed (${r})`);
  }

  /** Frees zlib's state once a running {@link inflate} has returned. Safe to call twice. */
  async free(): Promise<void> {
    await this.#running?.catch(() => {});
    if (this.#live) lib.symbols.inflateEnd(this.#strm);
    this.#live = false;
    this.#out = this.#in = new Uint8Array(0);
  }
}
