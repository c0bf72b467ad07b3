/**
 * What a streaming decompressor is to layer decompression (lib/oci/decompress.ts), whichever
 * library does the work — gzip by Deno's zlib-ng (zlib.ts) or ISA-L (ffi/isal.ts), zstd by
 * libzstd (ffi/zstd.ts) — and the input window all keep: the piece of compressed input handed over
 * last and how much of it is consumed.
 *
 * @module
 */

/**
 * A compressed stream of any number of members (gzip) or frames (zstd). The gzip inflaters ignore
 * trailing bytes after the last member when they start with a zero byte (padding), as node:zlib
 * does; anything else there is an error.
 */
export abstract class Inflater {
  /** The compressed input handed over last. */
  protected input: Uint8Array = new Uint8Array(0);
  /** How much of {@link input} is consumed. */
  protected offset = 0;
  /** Set once the last member has ended. */
  protected done = false;

  /** Input bytes not yet consumed. */
  get availIn(): number {
    return this.input.length - this.offset;
  }

  /** True once the last member has ended: what input is left over is trailing padding. */
  get ended(): boolean {
    return this.done;
  }

  /** Hands over the next piece of compressed input; it must stay untouched until consumed. */
  setInput(b: Uint8Array): void {
    this.input = b;
    this.offset = 0;
  }

  /**
   * Inflates into `out`: the bytes written. 0 with input left means the stream has ended
   * ({@link ended}); 0 with no input left means more input is needed.
   */
  abstract inflate(out: Uint8Array): number;

  /** Checks that the stream is complete once the input is exhausted; throws when it is truncated. */
  abstract finish(): void;

  /** Lets go of the input and the library's state. Safe to call twice. */
  abstract close(): void;
}
