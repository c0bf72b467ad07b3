/**
 * gzip decompression through the system zlib (FFI), with `inflate` run on an FFI worker thread:
 * node:zlib in Deno inflates on the main thread, where an import also parses, hashes and stores.
 * Here the caller can start the next `inflate` and handle the previous output meanwhile.
 *
 * @module
 */
import { type Inflater, StreamInflater } from "./inflater.ts";

export type { Inflater };

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

/** zlib's {@link Inflater}. */
export class GzipInflater extends StreamInflater {
  constructor() {
    super("zlib", new Uint8Array(STREAM_SIZE), {
      nextIn: NEXT_IN,
      availIn: AVAIL_IN,
      nextOut: NEXT_OUT,
      availOut: AVAIL_OUT,
    });
    const r = lib.symbols.inflateInit2_(this.state, GZIP_WINDOW, VERSION, STREAM_SIZE);
    if (r !== Z_OK) throw new Error(`zlib: inflateInit2 failed (${r})`);
  }

  protected step(): Promise<number> {
    return lib.symbols.inflate(this.state, Z_NO_FLUSH);
  }

  protected outcome(r: number, n: number): { n: number; end: boolean } {
    if (r === Z_OK || r === Z_STREAM_END || (r === Z_BUF_ERROR && this.availIn === 0)) {
      return { n, end: r === Z_STREAM_END };
    }
    const msg = this.view.getBigUint64(MSG, true);
    const text = msg ? Deno.UnsafePointerView.getCString(Deno.UnsafePointer.create(msg)!) : `error ${r}`;
    throw new Error(`not valid gzip data: ${text}`);
  }

  reset(): void {
    const r = lib.symbols.inflateReset(this.state);
    if (r !== Z_OK) throw new Error(`zlib: inflateReset failed (${r})`);
  }

  protected release(): void {
    lib.symbols.inflateEnd(this.state);
  }
}
