/**
 * Worker side of {@link LayerWorkers} (layer_workers.ts): imports one layer at a time — a
 * compressed blob (decompression, tar split, hashing and object stores) or a containers-storage
 * layer (reflinks and digests of its files) — into its own handle on the repository, so that
 * layers are imported on as many cores as there are workers.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { Repository } from "../repository/mod.ts";
import { decompressLayer } from "./decompress.ts";
import { importLayer, type LayerImportResult } from "./layer_import.ts";
import type { BlobLayerJob, FromWorker, LayerJob, StorageLayerJob, ToWorker } from "./layer_messages.ts";
import { ContainersStorage } from "../cstor/store.ts";
import { importStorageLayer } from "../cstor/import.ts";

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

async function importBlob(repo: Repository, job: BlobLayerJob, inbox: Inbox): Promise<LayerImportResult> {
  // Reusing the decompression buffers is safe: importLayer is done with each chunk before it asks
  // for the second one after it (see decompressLayer).
  const tar = decompressLayer(inbox, job.mediaType, job.limits, { reuseBuffers: true });
  return await importLayer(repo, job.diffId, tar, { verifyDiffId: job.verifyDiffId });
}

async function importFromStorage(repo: Repository, job: StorageLayerJob): Promise<LayerImportResult> {
  // The main thread holds the storage's locks too; shared locks, so this does not wait on them.
  const store = await ContainersStorage.open(job.storeRoot, { driver: job.driver });
  using _ = await store.lock();
  return await importStorageLayer(repo, store, job.layer, { zeroCopy: job.zeroCopy });
}

async function run(job: LayerJob, inbox: Inbox): Promise<void> {
  try {
    using repo = Repository.open(job.repoPath);
    const r = job.kind === "blob" ? await importBlob(repo, job, inbox) : await importFromStorage(repo, job);
    post({ type: "done", id: r.id, alreadyPresent: r.alreadyPresent, stats: r.stats });
  } catch (e) {
    post({ type: "error", message: e instanceof Error ? e.message : String(e) });
  }
}

let inbox: Inbox | null = null;
self.onmessage = (ev: MessageEvent<ToWorker>) => {
  const m = ev.data;
  if (m.type === "start") {
    const box = inbox = new Inbox();
    run(m.job, box).finally(() => {
      if (inbox === box) inbox = null;
    });
  } else inbox?.push(m);
};
