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

/**
 * A gzip stream of any number of members. Trailing bytes after the last member are ignored when
 * they start with a zero byte (padding), as node:zlib does; anything else there is an error.
 */
export class GzipInflater {
  #handle: NativeZlib;
  /** `[avail_out, avail_in]` after each write. */
  #state: Uint32Array;
  #error: string | null = null;
  #input: Uint8Array = new Uint8Array(0);
  #offset = 0;
  #ended = false;
  #closed = false;

  constructor() {
    const g = createGunzip() as unknown as { _handle?: NativeZlib; _writeState?: Uint32Array };
    if (typeof g._handle?.writeSync !== "function" || !(g._writeState instanceof Uint32Array)) {
      throw new Error("this Deno's node:zlib has no native handle to inflate with (Deno version not supported)");
    }
    this.#handle = g._handle;
    this.#state = g._writeState;
    this.#handle.onerror = (message) => void (this.#error ??= message);
  }

  /** Input bytes not yet consumed. */
  get availIn(): number {
    return this.#input.length - this.#offset;
  }

  /** True once the last member has ended: what input is left over is trailing padding. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Hands over the next piece of compressed input; it must stay untouched until consumed. */
  setInput(b: Uint8Array): void {
    this.#input = b;
    this.#offset = 0;
  }

  /**
   * Inflates into `out`: the bytes written. 0 with input left means the stream has ended
   * ({@link ended}); 0 with no input left means more input is needed.
   */
  inflate(out: Uint8Array): number {
    if (this.#closed) throw new Error("zlib: inflater closed");
    if (this.#ended) return 0;
    const avail = this.availIn;
    this.#handle.writeSync(Z_NO_FLUSH, this.#input, this.#offset, avail, out, 0, out.length);
    this.#check();
    const [outLeft, inLeft] = this.#state;
    this.#offset += avail - inLeft;
    // zlib stops early with both input and room left only at the end of the stream.
    if (outLeft > 0 && inLeft > 0) this.#ended = true;
    return out.length - outLeft;
  }

  /** Checks that the stream is complete once the input is exhausted; throws when it is truncated. */
  finish(): void {
    if (this.#ended) return;
    const out = new Uint8Array(1);
    this.#handle.writeSync(Z_FINISH, this.#input, this.#offset, this.availIn, out, 0, 1);
    if (this.#error === "unexpected end of file") throw new Error("gzip data is truncated");
    this.#check();
    if (this.#state[0] === 0) throw new Error("gzip data continues past its end");
    this.#ended = true;
  }

  /** Frees zlib's state. Safe to call twice. */
  close(): void {
    if (!this.#closed) this.#handle.close();
    this.#closed = true;
    this.#input = new Uint8Array(0);
  }

  #check(): void {
    if (this.#error !== null) throw new Error(`not valid gzip data: ${this.#error}`);
  }
}
