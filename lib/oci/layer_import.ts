/**
 * Layer import (oci-and-boot.md §4.3, §4.5): an uncompressed tar stream becomes a layer
 * splitstream — headers, padding, small files and trailing bytes inline, each regular file over
 * 64 bytes an object — registered as `streams/oci-layer-<diff_id>`. The tar is hashed while it
 * streams; a diff_id mismatch is an error and nothing is registered.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { Sha256Stream } from "../../ffi/crypto.ts";
import { addStats, countObject, emptyStats, type ImportStats } from "../cstor/import.ts";
import type { Digest } from "./digest.ts";
import { type ObjectId, objectIdBytes, type Repository } from "../repository/mod.ts";
import { type EntryLog, EntryLogWriter } from "../tree/entry_log.ts";
import { type TarLimits, tarSegments } from "../tar/mod.ts";
import { CONTENT_TYPE, layerContentId } from "./store.ts";
import type { HelperSlot } from "./store_helper.ts";
import { StreamOrder } from "./stream_order.ts";

export { addStats, countObject, emptyStats, type ImportStats };

/** Options of {@link importLayer}. */
export interface LayerImportOptions {
  /** Also create `streams/refs/<name>` → the layer stream. */
  name?: string;
  /** Require sha256 of the tar to equal the diff_id (default true). */
  verifyDiffId?: boolean;
  /** Tar parser limits. */
  limits?: TarLimits;
  /** Where another thread may be lent to store some of the files (store_helper.ts). */
  helper?: HelperSlot;
  /**
   * Called once every byte is read and every file handed to a store, before the wait for the
   * objects to reach the disk and be named: the thread can take on other work meanwhile.
   */
  onStored?: () => void;
}

/** Result of importing one layer. */
export interface LayerImportResult {
  id: ObjectId;
  /** True when `oci-layer-<diff_id>` already existed: nothing was read. */
  alreadyPresent: boolean;
  stats: ImportStats;
  /** The layer's entries as imported (absent when it was present already): the merge's input. */
  entries?: EntryLog;
}

/**
 * `src` passed through while its sha256 is computed; `hex()` is valid once it has ended. With
 * libcrypto, each chunk is hashed on another thread while the consumer handles it, and the hash
 * is awaited when the consumer asks for the next chunk — so a source that reuses buffers once
 * the consumer has moved on is still safe.
 */
function hashing(src: AsyncIterable<Uint8Array>): { stream: AsyncGenerator<Uint8Array>; hex: () => string } {
  let hex: string | null = null;
  async function* gen() {
    const threaded = Sha256Stream.create();
    try {
      if (threaded) {
        for await (const c of src) {
          const hashed = threaded.update(c);
          hashed.catch(() => {}); // rethrown below
          yield c;
          await hashed;
        }
        hex = threaded.hex();
      } else {
        const h = createHash("sha256");
        for await (const c of src) {
          h.update(c);
          yield c;
        }
        hex = h.digest("hex");
      }
    } finally {
      threaded?.free();
    }
  }
  return {
    stream: gen(),
    hex: () => {
      if (hex === null) throw new Error("layer stream was not read to its end");
      return hex;
    },
  };
}

/**
 * Splits the tar `tar` into a layer splitstream and registers it as `oci-layer-<diffId>`; a no-op
 * returning the existing stream when it is already there. The diff_id is checked over every byte
 * of the stream (trailing bytes after the end marker included) before registering.
 *
 * @example
 * ```ts
 * const r = await importLayer(repo, diffId, decompressLayer(await src.getBlob(desc), desc.mediaType));
 * ```
 */
export async function importLayer(
  repo: Repository,
  diffId: Digest,
  tar: AsyncIterable<Uint8Array>,
  opts: LayerImportOptions = {},
): Promise<LayerImportResult> {
  const contentId = layerContentId(diffId);
  const stats = emptyStats();
  const existing = repo.hasStream(contentId);
  if (existing) {
    if (opts.name !== undefined) repo.setRef("streams", opts.name, contentId);
    stats.layersAlreadyPresent++;
    return { id: existing, alreadyPresent: true, stats };
  }
  repo.checkWritable();
  const verify = opts.verifyDiffId ?? true;
  if (verify && !diffId.startsWith("sha256:")) throw new Error(`diff_id ${diffId} is not a sha256 digest`);
  const h = hashing(tar);
  const w = repo.createStreamWriter(CONTENT_TYPE.layer);
  const log = new EntryLogWriter(repo.alg);
  const out = new StreamOrder(w, (s) => {
    countObject(stats, s.method, s.size);
    log.object(objectIdBytes(s.id));
  });
  try {
    for await (const seg of tarSegments(h.stream, opts.limits, (e, content) => log.entry(e, content))) {
      if (seg.type === "inline") {
        // The decompressor reuses its buffers.
        out.inline(seg.bytes, true);
        stats.bytesInlined += seg.bytes.length;
        continue;
      }
      const pending = await opts.helper?.stores?.store(seg.chunks, seg.size);
      if (pending) out.pending(pending);
      else {
        const stored = await repo.ensureObjectFromStream(seg.chunks);
        if (stored.size !== seg.size) throw new Error(`${seg.entry.path}: stored ${stored.size} of ${seg.size} bytes`);
        out.stored(stored);
      }
      out.emit();
    }
    if (verify && `sha256:${h.hex()}` !== diffId) {
      throw new Error(`diff_id mismatch: the uncompressed tar is sha256:${h.hex()}, the config says ${diffId}`);
    }
    opts.onStored?.();
    // The helper names its objects while this thread names its own.
    await Promise.all([opts.helper?.close()?.finish(), repo.flush()]);
    out.emit();
    out.checkDone();
  } catch (e) {
    opts.helper?.close()?.release();
    w.abort();
    throw e;
  }
  const id = repo.writeStream(w, contentId, opts.name);
  stats.layers++;
  return { id, alreadyPresent: false, stats, entries: log.finish() };
}
