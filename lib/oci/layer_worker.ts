/**
 * Worker side of {@link LayerWorkers} (layer_workers.ts): runs layer jobs (layer_job.ts), their
 * blob's bytes read from the blob's location or coming from the main thread. One job reads at a
 * time; the next may start while the one before waits for its objects to reach the disk.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { errorChain } from "../error/mod.ts";
import { runLayerJob } from "./layer_job.ts";
import { fullGc } from "../runtime/gc.ts";
import { HelperSlot, serveStores } from "./store_helper.ts";
import type { FromWorker, LayerJob, ToWorker } from "./layer_messages.ts";

/** Compressed chunks posted by the main thread for job `jobId`, as an async iterable; acked as they are taken. */
class Inbox implements AsyncIterable<Uint8Array> {
  #jobId: number;
  #queue: Uint8Array[] = [];
  #end = false;
  #abort: string | null = null;
  #wake: (() => void) | null = null;
  /** Chunks handed to the import, the newest last: it is done with a chunk once it takes the second after it. */
  #held: Uint8Array[] = [];

  constructor(jobId: number) {
    this.#jobId = jobId;
  }

  push(m: ToWorker): void {
    if (m.type === "chunk") this.#queue.push(m.bytes);
    else if (m.type === "end") this.#end = true;
    else if (m.type === "abort") this.#abort = m.message;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    post({ type: "reading", jobId: this.#jobId });
    for (;;) {
      if (this.#abort !== null) throw new Error(this.#abort);
      const c = this.#queue.shift();
      if (c) {
        this.#held.push(c);
        const spare = this.#held.length > 2 ? this.#held.shift()!.buffer as ArrayBuffer : undefined;
        self.postMessage({ type: "ack", jobId: this.#jobId, spare } satisfies FromWorker, spare ? [spare] : []);
        yield c;
        continue;
      }
      if (this.#end) return;
      await new Promise<void>((r) => this.#wake = r);
      this.#wake = null;
    }
  }
}

function post(m: FromWorker): void {
  self.postMessage(m);
}

async function run(jobId: number, job: LayerJob, inbox: Inbox, helper: HelperSlot): Promise<void> {
  try {
    const r = await runLayerJob(
      job,
      inbox,
      (bytes) => post({ type: "read", jobId, bytes }),
      helper,
      () => post({ type: "stored", jobId }),
    );
    const done: FromWorker = { type: "done", jobId, id: r.id, alreadyPresent: r.alreadyPresent, stats: r.stats };
    if (r.entries) done.entries = r.entries;
    self.postMessage(done, r.entries ? [r.entries.entries.buffer, r.entries.objects.buffer] : []);
  } catch (e) {
    post({ type: "error", jobId, message: errorChain(e) });
  }
}

/** Inboxes of the jobs still running here (one reads at a time; others wait for the disk). */
const inboxes = new Map<number, Inbox>();
/** The newest import's slot; a helper offered after that import has stopped reading is let go. */
let helper = new HelperSlot();
helper.close();
self.onmessage = (ev: MessageEvent<ToWorker>) => {
  const m = ev.data;
  if (m.type === "start") {
    const box = new Inbox(m.jobId);
    inboxes.set(m.jobId, box);
    const slot = helper = new HelperSlot();
    run(m.jobId, m.job, box, slot).finally(() => {
      inboxes.delete(m.jobId);
      slot.close();
    });
  } else if (m.type === "helper") {
    helper.attach(m.port);
  } else if (m.type === "help") {
    // What this worker's own imports left behind goes before it takes on another's files.
    fullGc();
    serveStores(m.repoPath, m.port).finally(() => post({ type: "helped" }));
  } else inboxes.get(m.jobId)?.push(m);
};
