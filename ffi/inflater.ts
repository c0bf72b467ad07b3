/**
 * What the gzip decoders (zlib in ffi/zlib.ts, ISA-L in ffi/isal.ts) share: a C stream struct
 * held in a buffer, its input and output pointers set from JS, and a decode call that runs on an
 * FFI worker thread while the caller handles the previous output.
 *
 * @module
 */

/**
 * A streaming gzip decoder with the inflate step on an FFI worker thread. One member at a time
 * ({@link reset} for the next). Input set with {@link setInput} must stay untouched until
 * consumed; only one {@link inflate} may run at a time.
 */
export interface Inflater {
  /** Input bytes not yet consumed. */
  readonly availIn: number;
  /** The next unconsumed input byte (availIn must be > 0). */
  readonly nextByte: number;
  /** Hands the decoder the next piece of compressed input. */
  setInput(b: Uint8Array): void;
  /**
   * Inflates into `out` on a worker thread: the bytes written, and whether the member ended
   * (trailer checked). 0 bytes without the end means more input is needed.
   */
  inflate(out: Uint8Array): Promise<{ n: number; end: boolean }>;
  /** Starts the next member (after `end`), keeping the unconsumed input. */
  reset(): void;
  /** Frees the decoder's state once a running {@link inflate} has returned. Safe to call twice. */
  free(): Promise<void>;
}

/** Byte offsets of a stream struct's pointer and count fields (pointers 64-bit, counts 32-bit). */
export interface StreamFields {
  nextIn: number;
  availIn: number;
  nextOut: number;
  availOut: number;
}

/** The address of `b`'s first byte, for a struct field C reads later. */
export function addressOf(b: Uint8Array): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
}

/** An {@link Inflater} over a stream struct; subclasses make the calls of their library. */
export abstract class StreamInflater implements Inflater {
  /** The struct, and a view to read and write its fields. */
  protected readonly state: Uint8Array;
  protected readonly view: DataView;
  readonly #fields: StreamFields;
  readonly #name: string;
  /** The input and output the library holds addresses of, kept alive here. */
  #in: Uint8Array = new Uint8Array(0);
  #out: Uint8Array = new Uint8Array(0);
  #live = true;
  /** The decode call running on the worker thread, if any. */
  #running: Promise<number> | null = null;

  protected constructor(name: string, state: Uint8Array, fields: StreamFields) {
    this.#name = name;
    this.state = state;
    this.view = new DataView(state.buffer, state.byteOffset, state.byteLength);
    this.#fields = fields;
  }

  get availIn(): number {
    return this.view.getUint32(this.#fields.availIn, true);
  }

  get nextByte(): number {
    return this.#in[this.#in.length - this.availIn];
  }

  setInput(b: Uint8Array): void {
    this.#in = b;
    this.view.setBigUint64(this.#fields.nextIn, b.length ? addressOf(b) : 0n, true);
    this.view.setUint32(this.#fields.availIn, b.length, true);
  }

  async inflate(out: Uint8Array): Promise<{ n: number; end: boolean }> {
    if (!this.#live || this.#running) throw new Error(`${this.#name}: inflater freed or busy`);
    this.#out = out;
    this.view.setBigUint64(this.#fields.nextOut, addressOf(out), true);
    this.view.setUint32(this.#fields.availOut, out.length, true);
    this.#running = this.step();
    let r: number;
    try {
      r = await this.#running;
    } finally {
      this.#running = null;
    }
    return this.outcome(r, out.length - this.view.getUint32(this.#fields.availOut, true));
  }

  abstract reset(): void;

  async free(): Promise<void> {
    await this.#running?.catch(() => {});
    if (this.#live) this.release();
    this.#live = false;
    this.#out = this.#in = new Uint8Array(0);
  }

  /** Starts the library's decode call on the worker thread; resolves to its return code. */
  protected abstract step(): Promise<number>;
  /** The result of a decode call that returned `r` after writing `n` bytes; throws on errors. */
  protected abstract outcome(r: number, n: number): { n: number; end: boolean };
  /** Frees the library's state. */
  protected abstract release(): void;
}
