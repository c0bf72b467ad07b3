/**
 * Object stores done by another thread for a layer import. Layers are imported one per thread, so
 * once only one layer is left, one core would wait while the other hashes and stores every file
 * of it alone — half the work of an import (fs-verity digest, `O_TMPFILE`, write, link). A thread
 * with nothing left to import serves the stores of one that has ({@link serveStores}); the
 * importing thread ({@link RemoteStores}) sends it file contents in batches, as long as it keeps
 * up, and stores the rest itself, so both cores stay busy until the end.
 *
 * The two talk over a MessagePort of their own. The helper's objects are named (synced, linked)
 * before it answers the final flush, so the layer stream that refers to them is written after.
 *
 * @module
 */
import { errorChain } from "../error/mod.ts";
import { type ObjectId, Repository, type Stored, type StoreMethod } from "../repository/mod.ts";

/** Importing thread → helper. */
type Request =
  | { type: "store"; seq: number; buffer: ArrayBuffer; sizes: number[] }
  | { type: "flush" };

/** Helper → importing thread. */
type Reply =
  | { type: "stored"; seq: number; buffer: ArrayBuffer; ids: ObjectId[]; methods: StoreMethod[] }
  | { type: "flushed" }
  | { type: "error"; message: string };

/** A batch is sent when it holds this many bytes… */
const BATCH_BYTES = 1 << 19;
/** …or this many files. */
const BATCH_FILES = 256;
/** Larger files are stored by the importing thread (they would not fit a batch). */
const MAX_FILE = BATCH_BYTES;
/**
 * Batches sent and not answered. The importing thread hears back only when it waits for input,
 * every few MiB of tar, so the helper needs a few batches queued not to run dry meanwhile.
 */
const IN_FLIGHT = 4;

/**
 * Stores what the importing thread at the other end of `port` sends into the repository at
 * `repoPath`, until it asks for the final flush; resolves then (or when a store fails, after
 * reporting the error to the other end). Runs on the helping thread's event loop.
 */
export function serveStores(repoPath: string, port: MessagePort): Promise<void> {
  const repo = Repository.open(repoPath);
  const reply = (m: Reply, transfer: Transferable[] = []) => port.postMessage(m, transfer);
  return new Promise<void>((resolve) => {
    const end = (error?: unknown) => {
      if (error !== undefined) {
        reply({ type: "error", message: errorChain(error) });
      }
      port.onmessage = null;
      port.close();
      repo.close();
      resolve();
    };
    port.onmessage = async (ev: MessageEvent<Request>) => {
      const m = ev.data;
      try {
        if (m.type === "flush") {
          await repo.flush();
          reply({ type: "flushed" });
          end();
          return;
        }
        const ids: ObjectId[] = [];
        const methods: StoreMethod[] = [];
        let off = 0;
        for (const size of m.sizes) {
          const s = repo.ensureObject(new Uint8Array(m.buffer, off, size));
          ids.push(s.id);
          methods.push(s.method);
          off += size;
        }
        reply({ type: "stored", seq: m.seq, buffer: m.buffer, ids, methods }, [m.buffer]);
      } catch (e) {
        end(e);
      }
    };
  });
}

/** A file handed to the helper: its result once the helper has answered. */
export interface PendingStore {
  stored: Stored | null;
}

/**
 * The importing thread's end of a helper: file contents copied into batches, sent while the helper
 * keeps up, each file's {@link Stored} filled in when its batch comes back.
 */
export class RemoteStores {
  #port: MessagePort;
  #seq = 0;
  #buffer: Uint8Array<ArrayBuffer> | null = null;
  #fill = 0;
  #open: { size: number; pending: PendingStore }[] = [];
  #sent = new Map<number, { size: number; pending: PendingStore }[]>();
  #spares: ArrayBuffer[] = [];
  #error: Error | null = null;
  #flushed: (() => void) | null = null;
  #ended = false;

  constructor(port: MessagePort) {
    this.#port = port;
    port.onmessage = (ev: MessageEvent<Reply>) => this.#receive(ev.data);
  }

  /**
   * Copies the `size` bytes of `chunks` into the batch being filled, or returns null without
   * reading when the helper has enough to do (or the file is too large): the caller stores it.
   */
  async store(chunks: AsyncIterable<Uint8Array>, size: number): Promise<PendingStore | null> {
    this.#check();
    if (this.#ended || size > MAX_FILE) return null;
    if (this.#fill + size > BATCH_BYTES) this.#send();
    if (this.#sent.size >= IN_FLIGHT) return null;
    const buf = this.#buffer ??= new Uint8Array(this.#spares.pop() ?? new ArrayBuffer(BATCH_BYTES));
    let off = this.#fill;
    for await (const c of chunks) {
      if (off + c.length > this.#fill + size) throw new Error(`file content longer than its ${size} bytes`);
      buf.set(c, off);
      off += c.length;
    }
    if (off !== this.#fill + size) throw new Error(`file content shorter than its ${size} bytes`);
    this.#fill = off;
    const pending: PendingStore = { stored: null };
    this.#open.push({ size, pending });
    // A helper about to run dry gets what is batched so far.
    if (this.#open.length >= BATCH_FILES || this.#sent.size < 2) this.#send();
    return pending;
  }

  /** Sends what is batched, waits for every answer and for the helper to have named its objects. */
  async finish(): Promise<void> {
    this.#check();
    this.#send();
    this.#ended = true;
    const flushed = new Promise<void>((r) => this.#flushed = r);
    this.#port.postMessage({ type: "flush" } satisfies Request);
    await flushed;
    this.#check();
    this.#port.close();
  }

  /** The helper is gone (its thread failed): the import fails with `error` rather than wait for it. */
  fail(error: Error): void {
    this.#error ??= error;
    this.#flushed?.();
  }

  /** Lets the helper go without waiting (the import failed): it names what it stored and ends. */
  release(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#port.postMessage({ type: "flush" } satisfies Request);
    this.#port.onmessage = null;
    this.#port.close();
  }

  #send(): void {
    if (!this.#open.length) return;
    const seq = this.#seq++;
    const buffer = this.#buffer!.buffer;
    this.#sent.set(seq, this.#open);
    const m: Request = { type: "store", seq, buffer, sizes: this.#open.map((f) => f.size) };
    this.#port.postMessage(m, [buffer]);
    this.#buffer = null;
    this.#fill = 0;
    this.#open = [];
  }

  #receive(m: Reply): void {
    if (m.type === "flushed") {
      this.#flushed?.();
      return;
    }
    if (m.type === "error") {
      this.fail(new Error(`storing objects on another thread: ${m.message}`));
      return;
    }
    const files = this.#sent.get(m.seq)!;
    this.#sent.delete(m.seq);
    files.forEach((f, i) => f.pending.stored = { id: m.ids[i], method: m.methods[i], size: f.size });
    this.#spares.push(m.buffer);
  }

  #check(): void {
    if (this.#error) throw this.#error;
  }
}

/**
 * Where a running import finds the helper lent to it, if any. A helper lent after the import has
 * ended is let go at once.
 */
export class HelperSlot {
  #stores: RemoteStores | null = null;
  #closed = false;

  /** Lends the helper at the other end of `port`; false when the import has one or has ended. */
  attach(port: MessagePort): boolean {
    const stores = new RemoteStores(port);
    if (this.#closed || this.#stores) {
      stores.release();
      return false;
    }
    this.#stores = stores;
    return true;
  }

  /** The helper, once lent. */
  get stores(): RemoteStores | null {
    return this.#stores;
  }

  /** Ends the import's use of the slot: the helper it had, to finish or release. */
  close(): RemoteStores | null {
    this.#closed = true;
    return this.#stores;
  }
}
