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

/** One layer to import: the worker opens the repository (and the storage) itself. */
export type LayerJob = BlobLayerJob | StorageLayerJob;

/** A (compressed) layer blob, whose bytes the main thread sends after the job. */
export interface BlobLayerJob {
  kind: "blob";
  repoPath: string;
  diffId: Digest;
  mediaType: string;
  verifyDiffId: boolean;
  limits?: DecompressLimits;
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

/** Main thread → worker: a job, then its compressed bytes, then the end (or an abort). */
export type ToWorker =
  | { type: "start"; job: LayerJob }
  | { type: "chunk"; bytes: Uint8Array }
  | { type: "end" }
  | { type: "abort"; message: string };

/**
 * Worker → main thread: `reading` when the import first wants bytes (a layer found present wants
 * none, so the blob is not read at all), one ack per chunk taken — handing back the buffer of a
 * chunk the import is done with, for the next chunk to be copied into — then the result.
 */
export type FromWorker =
  | { type: "reading" }
  | { type: "ack"; spare?: ArrayBuffer }
  | { type: "done"; id: ObjectId; alreadyPresent: boolean; stats: ImportStats }
  | { type: "error"; message: string };
