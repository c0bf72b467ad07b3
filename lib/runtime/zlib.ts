/**
 * gzip inflate on the zlib-ng that Deno carries for node:zlib, driven through the native handle
 * of a `Gunzip` stream the way Node's own stream code drives it (`writeSync` with an explicit
 * input and output window, results in `_writeState`). It runs on the calling thread and inflates
 * about twice as fast as the system zlib: an import that has a thread per layer spends less CPU
 * in total, and on two cores that is what bounds it.
 *
 * @module
 */
import { createGunzip } from "node:zlib";
import { Inflater } from "./inflater.ts";

const Z_NO_FLUSH = 0, Z_FINISH = 4;

/** The native handle's side of the protocol, as node:zlib's stream code uses it. */
interface NativeZlib {
  writeSync(
    flush: number,
    input: Uint8Array,
    inOff: number,
    inLen: number,
    out: Uint8Array,
    outOff: number,
    outLen: number,
  ): void;
  close(): void;
  onerror: (message: string, errno: number) => void;
}

/** The {@link Inflater} on zlib-ng. */
export class GzipInflater extends Inflater {
  #handle: NativeZlib;
  /** `[avail_out, avail_in]` after each write. */
  #state: Uint32Array;
  #error: string | null = null;
  #closed = false;

  constructor() {
    super();
    const g = createGunzip() as unknown as { _handle?: NativeZlib; _writeState?: Uint32Array };
    if (typeof g._handle?.writeSync !== "function" || !(g._writeState instanceof Uint32Array)) {
      throw new Error("this Deno's node:zlib has no native handle to inflate with (Deno version not supported)");
    }
    this.#handle = g._handle;
    this.#state = g._writeState;
    this.#handle.onerror = (message) => void (this.#error ??= message);
  }

  inflate(out: Uint8Array): number {
    if (this.#closed) throw new Error("zlib: inflater closed");
    if (this.done) return 0;
    const avail = this.availIn;
    this.#handle.writeSync(Z_NO_FLUSH, this.input, this.offset, avail, out, 0, out.length);
    this.#check();
    const [outLeft, inLeft] = this.#state;
    this.offset += avail - inLeft;
    // zlib stops early with both input and room left only at the end of the stream.
    if (outLeft > 0 && inLeft > 0) this.done = true;
    return out.length - outLeft;
  }

  finish(): void {
    if (this.done) return;
    const out = new Uint8Array(1);
    this.#handle.writeSync(Z_FINISH, this.input, this.offset, this.availIn, out, 0, 1);
    if (this.#error === "unexpected end of file") throw new Error("gzip data is truncated");
    this.#check();
    if (this.#state[0] === 0) throw new Error("gzip data continues past its end");
    this.done = true;
  }

  close(): void {
    if (!this.#closed) this.#handle.close();
    this.#closed = true;
    this.input = new Uint8Array(0);
  }

  #check(): void {
    if (this.#error !== null) throw new Error(`not valid gzip data: ${this.#error}`);
  }
}
