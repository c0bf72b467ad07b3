/**
 * A layer splitstream written in tar order while some of its files are stored by another thread
 * (store_helper.ts): what comes after a file the helper has not answered for yet waits, in order,
 * until its object is known.
 *
 * @module
 */
import type { Stored } from "../repository/mod.ts";
import type { SplitStreamWriter } from "../splitstream/mod.ts";
import type { PendingStore } from "./store_helper.ts";

/** The pieces of a layer stream, written to `writer` as soon as everything before them is known. */
export class StreamOrder {
  #writer: SplitStreamWriter;
  #onStored: (stored: Stored) => void;
  #waiting: (Uint8Array | PendingStore)[] = [];
  #head = 0;

  /** `onStored` hears of every object as it joins the stream (to count it). */
  constructor(writer: SplitStreamWriter, onStored: (stored: Stored) => void) {
    this.#writer = writer;
    this.#onStored = onStored;
  }

  /** Bytes stored inside the stream. `reused`: the caller's buffer changes later, so a waiting piece is copied. */
  inline(bytes: Uint8Array, reused: boolean): void {
    if (this.#head < this.#waiting.length) this.#waiting.push(reused ? bytes.slice() : bytes);
    else this.#writer.writeInline(bytes);
  }

  /** A file stored by this thread. */
  stored(stored: Stored): void {
    if (this.#head < this.#waiting.length) this.#waiting.push({ stored });
    else this.#external(stored);
  }

  /** A file handed to the helper: what follows waits until it is answered. */
  pending(p: PendingStore): void {
    this.#waiting.push(p);
  }

  /** Writes every piece whose predecessors are known. */
  emit(): void {
    for (; this.#head < this.#waiting.length; this.#head++) {
      const q = this.#waiting[this.#head];
      if (q instanceof Uint8Array) this.#writer.writeInline(q);
      else if (q.stored) this.#external(q.stored);
      else {
        if (this.#head >= 1024) this.#waiting.splice(0, this.#head), this.#head = 0;
        return;
      }
    }
    this.#waiting.length = this.#head = 0;
  }

  /** Throws if a piece is still waiting (call after the helper's final flush and {@link emit}). */
  checkDone(): void {
    if (this.#head < this.#waiting.length) throw new Error("a file handed to another thread was not stored");
  }

  #external(stored: Stored): void {
    this.#onStored(stored);
    this.#writer.addExternal(stored.id, stored.size);
  }
}
