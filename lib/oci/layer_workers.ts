/**
 * Layer imports on several threads. An import is CPU-bound — inflating, two sha256s, the
 * fs-verity digest of every file, a syscall or five per object — and on one thread it runs at the
 * speed of one core whatever the concurrency. The calling thread imports one layer itself; each
 * further concurrent import goes to a worker (layer_worker.ts), which has its own handle on the
 * repository and reads its blob itself where the source says where any thread can (a file, a
 * registry), or else gets it handed over — read and verified on the calling thread.
 *
 * @module
 */
import { errorChain } from "../error/mod.ts";
import { fullGc, minorGc } from "../runtime/gc.ts";
import type { LayerImportResult } from "./layer_import.ts";
import { runLayerJob } from "./layer_job.ts";
import type { FromWorker, LayerJob, ToWorker } from "./layer_messages.ts";
import { HelperSlot, serveStores } from "./store_helper.ts";

export type { BlobLayerJob, LayerJob, StorageLayerJob } from "./layer_messages.ts";

/** Chunks handed over and not yet taken by the worker: enough to keep it busy, few enough to keep memory flat. */
const IN_FLIGHT = 4;
/** Buffers handed back by workers, kept for the next chunks (more would only be garbage). */
const SPARES = 16;

/** Bytes read between two {@link minorGc} calls. */
const GC_EVERY = 16 << 20;

/** `blob` with a {@link minorGc} every {@link GC_EVERY} bytes: a source's chunks die as they go. */
async function* collected(blob: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let since = 0;
  for await (const c of blob) {
    if ((since += c.length) >= GC_EVERY) {
      since = 0;
      minorGc();
    }
    yield c;
  }
}

type Outcome = { ok: true; value: LayerImportResult } | { ok: false; error: Error };

/** What the main thread does with a message about one of a worker's jobs. */
type JobHandler = (m: Exclude<FromWorker, { type: "helped" }>) => void;

/** A pool of layer-import workers, started as needed and stopped by {@link terminate}. */
export class LayerWorkers {
  #idle: Worker[] = [];
  #all = new Set<Worker>();
  /**
   * Chunk buffers the workers are done with. Reused rather than allocated per chunk: dead
   * ArrayBuffers are memory outside V8's heap, which each isolate lets grow by tens of MiB before
   * it collects them.
   */
  #spares: ArrayBuffer[] = [];
  /**
   * Whether the calling thread reads an import already. It takes one itself: it would otherwise
   * only hand bytes over, and each worker costs ~20 MiB, some of which stays after it ends.
   */
  #localBusy: boolean;
  /** The blob import reading on the calling thread, which a worker can be lent to. */
  #local: { slot: HelperSlot; repoPath: string } | null = null;
  /** Blob imports reading in workers, and whether the calling thread helps them already. */
  #running = new Map<Worker, { repoPath: string; helped: boolean }>();
  /** Each worker's jobs by number: a worker can start one while another waits for the disk. */
  #jobs = new Map<Worker, Map<number, JobHandler>>();
  #nextJob = 0;
  /** Workers lent as store helpers: how to fail the import they help if they die. */
  #helping = new Map<Worker, (e: Error) => void>();

  /** With `local: false`, every import goes to a worker (the tests of the worker path use it). */
  constructor(opts: { local?: boolean } = {}) {
    this.#localBusy = opts.local === false;
  }

  /**
   * Imports a layer: on this thread when it is not reading one already, else in a worker (one per
   * concurrent call). A blob job reads its blob's location (`onRead` hears how much), or else
   * `blob`; when reading it fails (a digest mismatch found by the source, say), the import drops
   * what it stored and that error is thrown. A storage job needs no `blob`. `onStored` is called
   * when a blob import has read everything and only waits for its objects to reach the disk: its
   * thread takes the next import from then on (call `import` again without waiting).
   */
  async import(
    job: LayerJob,
    blob?: AsyncIterable<Uint8Array>,
    onRead?: (bytes: number) => void,
    onStored?: () => void,
  ): Promise<LayerImportResult> {
    const chunks = blob && collected(blob);
    if (this.#localBusy) return await this.#inWorker(job, chunks, onRead, onStored);
    this.#localBusy = true;
    const slot = new HelperSlot();
    if (job.kind === "blob") this.#local = { slot, repoPath: job.repoPath };
    let reading = true;
    const free = () => {
      if (!reading) return;
      reading = false;
      if (this.#local?.slot === slot) this.#local = null;
      this.#localBusy = false;
    };
    try {
      return await runLayerJob(job, chunks, onRead, slot, () => {
        free();
        onStored?.();
      });
    } finally {
      slot.close();
      free();
    }
  }

  /**
   * Lends a thread with no layer left to import to a blob import still running, to store files
   * for it (store_helper.ts): the calling thread when it is free, else an idle worker. Call when
   * there are no more layers to start. Says which thread it lent, if any.
   */
  lend(): "calling thread" | "worker" | null {
    if (!this.#localBusy) {
      for (const [w, r] of this.#running) {
        if (r.helped) continue;
        r.helped = true;
        const { port1, port2 } = new MessageChannel();
        w.postMessage({ type: "helper", port: port1 } satisfies ToWorker, [port1]);
        // What this thread's own imports left behind goes before it takes on another's files.
        fullGc();
        void serveStores(r.repoPath, port2);
        return "calling thread";
      }
    }
    const local = this.#local;
    if (!local || local.slot.stores || !this.#idle.length) return null;
    const w = this.#idle.pop()!;
    const { port1, port2 } = new MessageChannel();
    this.#helping.set(w, (e) => local.slot.stores?.fail(e));
    w.postMessage({ type: "help", repoPath: local.repoPath, port: port2 } satisfies ToWorker, [port2]);
    local.slot.attach(port1);
    return "worker";
  }

  /** {@link import} in a worker, `blob` (if the job has no location) handed over in bounded, transferred chunks. */
  async #inWorker(
    job: LayerJob,
    blob?: AsyncIterable<Uint8Array>,
    onRead?: (bytes: number) => void,
    onStored?: () => void,
  ): Promise<LayerImportResult> {
    const w = this.#idle.pop() ?? this.#start();
    const jobs = this.#jobs.get(w)!;
    const jobId = this.#nextJob++;
    let outcome: Outcome | null = null;
    let reading = false;
    let acked = 0;
    let wake: (() => void) | null = null;
    let busy = true;
    // The worker can take another job once this one has read everything (or ended).
    const free = () => {
      if (!busy) return;
      busy = false;
      this.#running.delete(w);
      if (this.#all.has(w)) this.#idle.push(w);
    };
    const settled = new Promise<void>((resolve) => {
      jobs.set(jobId, (m) => {
        if (m.type === "read") onRead?.(m.bytes);
        else if (m.type === "reading") {
          reading = true;
          wake?.();
        } else if (m.type === "ack") {
          acked++;
          if (m.spare && this.#spares.length < SPARES) this.#spares.push(m.spare);
          wake?.();
        } else if (m.type === "stored") {
          free();
          onStored?.();
        } else {
          outcome ??= m.type === "done"
            ? { ok: true, value: { id: m.id, alreadyPresent: m.alreadyPresent, stats: m.stats, entries: m.entries } }
            : { ok: false, error: new Error(m.message) };
          jobs.delete(jobId);
          // Once freed, the worker's entry there is its next job's.
          if (busy) this.#running.delete(w);
          resolve();
          wake?.();
        }
      });
    });
    const send = (m: ToWorker, transfer: Transferable[] = []) => w.postMessage(m, transfer);
    send({ type: "start", job, jobId });
    if (job.kind === "blob") this.#running.set(w, { repoPath: job.repoPath, helped: false });
    let sent = 0;
    try {
      // A job that reads its blob's location (or needs no blob) never asks for bytes: this waits for its outcome.
      while (!reading && !outcome) await new Promise<void>((r) => wake = r);
      if (outcome) return this.#finish(outcome, free);
      if (!blob) throw new Error(`a ${job.kind} layer job needs its blob`);
      for await (const chunk of blob) {
        if (outcome) break;
        // A copy the worker owns: sources may reuse their buffers, or hand out views of larger ones.
        const bytes = this.#buffer(chunk.length);
        bytes.set(chunk);
        send({ type: "chunk", jobId, bytes }, [bytes.buffer]);
        sent++;
        while (sent - acked >= IN_FLIGHT && !outcome) await new Promise<void>((r) => wake = r);
      }
      if (!outcome) send({ type: "end", jobId });
    } catch (e) {
      if (!outcome) send({ type: "abort", jobId, message: errorChain(e) });
      await settled;
      free();
      throw e;
    }
    await settled;
    return this.#finish(outcome!, free);
  }

  /** Worker threads running (started and not stopped). */
  get threads(): number {
    return this.#all.size;
  }

  /** Stops every worker (idle ones; call when no import is running). */
  terminate(): void {
    for (const w of this.#all) w.terminate();
    this.#all.clear();
    this.#idle = [];
    this.#spares = [];
    this.#jobs.clear();
    this.#running.clear();
    this.#helping.clear();
  }

  #start(): Worker {
    const w = new Worker(new URL("./layer_worker.ts", import.meta.url).href, { type: "module" });
    const jobs = new Map<number, JobHandler>();
    this.#jobs.set(w, jobs);
    w.onmessage = (ev: MessageEvent<FromWorker>) => {
      const m = ev.data;
      if (m.type !== "helped") jobs.get(m.jobId)?.(m);
      else if (this.#helping.delete(w) && this.#all.has(w)) this.#idle.push(w);
    };
    w.onerror = (ev: ErrorEvent) => {
      ev.preventDefault();
      this.#kill(w);
      for (const [jobId, handle] of [...jobs]) {
        handle({ type: "error", jobId, message: `layer import worker failed: ${ev.message}` });
      }
      this.#helping.get(w)?.(new Error(`store helper worker failed: ${ev.message}`));
      this.#helping.delete(w);
    };
    this.#all.add(w);
    return w;
  }

  /** `n` bytes of a spare buffer, or of a new one (at least 1 MiB, so that it can be reused). */
  #buffer(n: number): Uint8Array<ArrayBuffer> {
    let b = this.#spares.pop();
    if (!b || b.byteLength < n) b = new ArrayBuffer(Math.max(n, 1 << 20));
    return new Uint8Array(b, 0, n);
  }

  #finish(o: Outcome, free: () => void): LayerImportResult {
    free();
    if (!o.ok) throw o.error;
    return o.value;
  }

  #kill(w: Worker): void {
    w.terminate();
    this.#all.delete(w);
    this.#idle = this.#idle.filter((x) => x !== w);
  }
}
