/**
 * The messages between {@link LayerWorkers} and its workers (layer_worker.ts).
 *
 * @module
 */
import type { ObjectId } from "../repository/mod.ts";
import type { ImportStats } from "../cstor/import.ts";
import type { StorageLayer } from "../cstor/metadata.ts";
import type { StorageDriver } from "../cstor/store.ts";
import type { DecompressLimits } from "./decompress.ts";
import type { Digest } from "./digest.ts";
import type { BlobLocation } from "./source.ts";
import type { EntryLog } from "../tree/entry_log.ts";

/** One layer to import: the worker opens the repository (and the storage) itself. */
export type LayerJob = BlobLayerJob | StorageLayerJob;

/**
 * A (compressed) layer blob: read by the import itself from its `location`, else sent by the main
 * thread after the job.
 */
export interface BlobLayerJob {
  kind: "blob";
  repoPath: string;
  diffId: Digest;
  mediaType: string;
  verifyDiffId: boolean;
  limits?: DecompressLimits;
  location?: BlobLocation;
}

/** A layer of a containers-storage, imported from its files (lib/cstor/import.ts). */
export interface StorageLayerJob {
  kind: "storage";
  repoPath: string;
  storeRoot: string;
  driver: StorageDriver;
  layer: StorageLayer;
  zeroCopy: boolean;
}

/**
 * Main thread → worker: a job (numbered by the main thread), then its compressed bytes, then the
 * end (or an abort). Besides, to a worker importing a blob layer: a `helper` port to send file
 * stores to; to an idle worker: a `help` port to serve the stores of an import on another thread
 * (store_helper.ts). A worker may get a job while an earlier one waits for its objects to reach
 * the disk, so job messages carry the job's number.
 */
export type ToWorker =
  | { type: "start"; job: LayerJob; jobId: number }
  | { type: "chunk"; jobId: number; bytes: Uint8Array }
  | { type: "end"; jobId: number }
  | { type: "abort"; jobId: number; message: string }
  | { type: "helper"; port: MessagePort }
  | { type: "help"; repoPath: string; port: MessagePort };

/**
 * Worker → main thread, about job `jobId`: `reading` when the import first wants bytes (a layer
 * found present wants none, so the blob is not read at all), one ack per chunk taken — handing
 * back the buffer of a chunk the import is done with, for the next chunk to be copied into —
 * `stored` when it only waits for the disk (the worker can take the next job), then the result
 * (with the layer's entry log, transferred). A job that reads its blob's location itself reports
 * the bytes read instead (`read`, for progress). A worker lent as a helper says `helped` when that
 * import no longer needs it.
 */
export type FromWorker =
  | { type: "helped" }
  | { type: "reading"; jobId: number }
  | { type: "read"; jobId: number; bytes: number }
  | { type: "ack"; jobId: number; spare?: ArrayBuffer }
  | { type: "stored"; jobId: number }
  | { type: "done"; jobId: number; id: ObjectId; alreadyPresent: boolean; stats: ImportStats; entries?: EntryLog }
  | { type: "error"; jobId: number; message: string };
