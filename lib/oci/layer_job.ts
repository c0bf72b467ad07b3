/**
 * One layer import, as {@link LayerWorkers} runs it — on the calling thread or in a worker: a
 * compressed blob (decompression, tar split, hashing, object stores) or a containers-storage layer
 * (reflinks and digests of its files), into a handle on the repository of its own.
 *
 * @module
 */
import { importStorageLayer } from "../cstor/import.ts";
import { ContainersStorage } from "../cstor/store.ts";
import { Repository } from "../repository/mod.ts";
import { fullGc } from "../runtime/gc.ts";
import { decompressLayer } from "./decompress.ts";
import { importLayer, type LayerImportResult } from "./layer_import.ts";
import type { LayerJob } from "./layer_messages.ts";
import { counting, openBlobLocation } from "./source.ts";
import type { HelperSlot } from "./store_helper.ts";

/**
 * Runs `job`; a blob job reads its blob's location or `blob`, and only when the layer is not in
 * the repository yet. `onRead` hears of the bytes read from the location; `helper` is where another
 * thread may be lent to the import; `onStored` is called when a blob import only waits for its
 * objects to reach the disk (see {@link importLayer}).
 */
export async function runLayerJob(
  job: LayerJob,
  blob?: AsyncIterable<Uint8Array>,
  onRead?: (bytes: number) => void,
  helper?: HelperSlot,
  onStored?: () => void,
): Promise<LayerImportResult> {
  try {
    using repo = Repository.open(job.repoPath);
    if (job.kind === "storage") {
      // The caller holds the storage's locks too; shared locks, so this does not wait on them.
      const store = await ContainersStorage.open(job.storeRoot, { driver: job.driver });
      using _ = await store.lock();
      return await importStorageLayer(repo, store, job.layer, { zeroCopy: job.zeroCopy });
    }
    if (job.location) blob = counting(await openBlobLocation(job.location), onRead);
    if (!blob) throw new Error("a blob layer job needs its blob");
    // Reusing the decompression buffers is safe: importLayer is done with each chunk before it asks
    // for the second one after it (see decompressLayer).
    const tar = decompressLayer(blob, job.mediaType, job.limits, { reuseBuffers: true });
    return await importLayer(repo, job.diffId, tar, { verifyDiffId: job.verifyDiffId, helper, onStored });
  } finally {
    // Much of a layer's garbage outlives two scavenges (chunks held across awaits, the stream's
    // headers), and V8 would carry it into the thread's next import until its heap doubles; the
    // peak of a pull is near the end of its last layer (measured: 5–9 MiB lower, ~15 ms a layer).
    fullGc();
  }
}
