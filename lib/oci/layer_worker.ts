/**
 * Worker side of {@link LayerWorkers} (layer_workers.ts): runs one layer job at a time
 * (layer_job.ts), its blob's bytes read from the blob's location or coming from the main thread.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { runLayerJob } from "./layer_job.ts";
import { fullGc } from "../runtime/gc.ts";
import { HelperSlot, serveStores } from "./store_helper.ts";
import type { FromWorker, LayerJob, ToWorker } from "./layer_messages.ts";

/** Compressed chunks posted by the main thread, as an async iterable; acked as they are taken. */
class Inbox implements AsyncIterable<Uint8Array> {
  #queue: Uint8Array[] = [];
  #end = false;
  #abort: string | null = null;
  #wake: (() => void) | null = null;
  /** Chunks handed to the import, the newest last: it is done with a chunk once it takes the second after it. */
  #held: Uint8Array[] = [];

  push(m: ToWorker): void {
    if (m.type === "chunk") this.#queue.push(m.bytes);
    else if (m.type === "end") this.#end = true;
    else if (m.type === "abort") this.#abort = m.message;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    post({ type: "reading" });
    for (;;) {
      if (this.#abort !== null) throw new Error(this.#abort);
      const c = this.#queue.shift();
      if (c) {
        this.#held.push(c);
        const spare = this.#held.length > 2 ? this.#held.shift()!.buffer as ArrayBuffer : undefined;
        self.postMessage({ type: "ack", spare } satisfies FromWorker, spare ? [spare] : []);
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

async function run(job: LayerJob, inbox: Inbox, helper: HelperSlot): Promise<void> {
  try {
    const r = await runLayerJob(job, inbox, (bytes) => post({ type: "read", bytes }), helper);
    post({ type: "done", id: r.id, alreadyPresent: r.alreadyPresent, stats: r.stats });
  } catch (e) {
    post({ type: "error", message: e instanceof Error ? e.message : String(e) });
  }
}

let inbox: Inbox | null = null;
/** The current (or last) import's slot; a helper offered after that import has ended is let go. */
let helper = new HelperSlot();
helper.close();
self.onmessage = (ev: MessageEvent<ToWorker>) => {
  const m = ev.data;
  if (m.type === "start") {
    const box = inbox = new Inbox();
    const slot = helper = new HelperSlot();
    run(m.job, box, slot).finally(() => {
      if (inbox === box) inbox = null;
      slot.close();
    });
  } else if (m.type === "helper") {
    helper.attach(m.port);
  } else if (m.type === "help") {
    // What this worker's own imports left behind goes before it takes on another's files.
    fullGc();
    serveStores(m.repoPath, m.port).finally(() => post({ type: "helped" }));
  } else inbox?.push(m);
};
