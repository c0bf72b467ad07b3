/**
 * Zero-copy layer import from containers-storage (oci-and-boot.md §10.3–10.5): the layer
 * splitstream is written straight from tar-split metadata, and file contents larger than 64 bytes
 * become objects by reflink, else hardlink, else copy of the file in the layer's directory — no
 * content passes through memory except small files. The result is byte-identical to splitting
 * the rebuilt tar stream.
 *
 * @module
 */
import { close } from "../../ffi/libc.ts";
import type { Repository, StoreMethod } from "../repository/mod.ts";
import type { ObjectId } from "../repository/objectid.ts";
import { contentType, INLINE_CONTENT_MAX } from "../splitstream/mod.ts";
import { withContext } from "../error/mod.ts";
import { Crc64 } from "./crc64.ts";
import { checkCrc64, isRegularTypeflag, type LayerEntry, readContent } from "./layer.ts";
import type { StorageLayer } from "./metadata.ts";
import type { ContainersStorageSource } from "./source.ts";
import type { ContainersStorage } from "./store.ts";
import type { Digest } from "../oci/digest.ts";

/** Counters of an import, as composefs-rs `ImportStats` has them. */
export interface ImportStats {
  layers: number;
  layersAlreadyPresent: number;
  objectsCopied: number;
  objectsReflinked: number;
  objectsHardlinked: number;
  objectsAlreadyPresent: number;
  bytesCopied: number;
  bytesReflinked: number;
  bytesHardlinked: number;
  bytesInlined: number;
}

/** Zeroed {@link ImportStats}. */
export function emptyStats(): ImportStats {
  return {
    layers: 0,
    layersAlreadyPresent: 0,
    objectsCopied: 0,
    objectsReflinked: 0,
    objectsHardlinked: 0,
    objectsAlreadyPresent: 0,
    bytesCopied: 0,
    bytesReflinked: 0,
    bytesHardlinked: 0,
    bytesInlined: 0,
  };
}

/** Adds `b` into `a`. */
export function addStats(a: ImportStats, b: ImportStats): void {
  for (const k of Object.keys(a) as (keyof ImportStats)[]) a[k] += b[k];
}

/** Adds one stored object to `stats` the way composefs-rs's `ImportStats` counts it. */
export function countObject(stats: ImportStats, method: StoreMethod, size: number): void {
  if (method === "present") stats.objectsAlreadyPresent++;
  else if (method === "reflinked") (stats.objectsReflinked++, stats.bytesReflinked += size);
  else if (method === "hardlinked") (stats.objectsHardlinked++, stats.bytesHardlinked += size);
  else (stats.objectsCopied++, stats.bytesCopied += size);
}

/** Options of {@link importStorageLayer}. */
export interface ZeroCopyOptions {
  /** Refuse to copy: every large file must be reflinked or hardlinked (`--zero-copy`). */
  zeroCopy?: boolean;
  /** Check each file's CRC-64 from tar-split (default true). */
  verifyCrc?: boolean;
}

/** Result of importing one layer. */
export interface LayerImport {
  /** The layer splitstream's object id. */
  id: ObjectId;
  /** True when `oci-layer-<diff_id>` already existed (nothing was read). */
  alreadyPresent: boolean;
  stats: ImportStats;
}

const LAYER_TYPE = contentType("ocilayer");

async function drain(src: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const _ of src) { /* reading is the check */ }
}

async function storeExternal(
  repo: Repository,
  entry: LayerEntry,
  opts: ZeroCopyOptions,
  stats: ImportStats,
): Promise<ObjectId> {
  const path = entry.content!.path;
  const verify = opts.verifyCrc !== false && entry.crc64 !== null;
  // The CRC is computed on the bytes read for the object's digest, so each file is read once;
  // where that read did not happen, or happened twice (a failed hardlink, then a copy), the
  // object is read again below.
  const crc = verify ? new Crc64() : null;
  let seen = 0;
  const onData = crc
    ? (chunk: Uint8Array) => {
      crc.update(chunk);
      seen += chunk.length;
    }
    : undefined;
  const stored = repo.ensureObjectFromFile(path, { onData });
  if (stored.size !== entry.size) {
    throw new Error(`${path} has ${stored.size} bytes, tar-split records ${entry.size}`);
  }
  if (opts.zeroCopy && stored.method === "copied") {
    throw new Error(
      `${path}: reflink and hardlink into ${repo.path} both failed and copying is disabled (zero-copy); ` +
        `the repository must be on the same filesystem as the containers-storage`,
    );
  }
  if (verify) {
    // Read again, it is the stored object that is checked (through its fd: it may not be named
    // until the next sync).
    await withContext(`checking object ${stored.id} stored from ${path}`, async () => {
      if (crc && seen === entry.size) return checkCrc64(entry, crc.digest(), path);
      const fd = repo.openObject(stored.id);
      try {
        await drain(readContent({ ...entry, content: { ...entry.content!, path: `/proc/self/fd/${fd}` } }));
      } finally {
        close(fd);
      }
    });
  }
  countObject(stats, stored.method, entry.size);
  return stored.id;
}

/**
 * Imports one storage layer as `streams/oci-layer-<diff_id>` (a no-op when that stream exists).
 * Hold `store.lock()` around the call.
 *
 * @example
 * ```ts
 * using _ = await store.lock();
 * for (const layer of await store.imageLayers(image)) {
 *   const r = await importStorageLayer(repo, store, layer, { zeroCopy: true });
 * }
 * ```
 */
export async function importStorageLayer(
  repo: Repository,
  store: ContainersStorage,
  layer: StorageLayer,
  opts: ZeroCopyOptions = {},
): Promise<LayerImport> {
  const diffId = layer.diffDigest;
  if (!diffId) throw new Error(`layer ${layer.id} has no recorded diff digest`);
  const contentId = `oci-layer-${diffId}`;
  const stats = emptyStats();
  const existing = repo.hasStream(contentId);
  if (existing) {
    stats.layersAlreadyPresent++;
    return { id: existing, alreadyPresent: true, stats };
  }
  return await withContext(`importing layer ${diffId} from containers-storage`, async () => {
    repo.checkWritable();
    const verify = opts.verifyCrc ?? true;
    const writer = repo.createStreamWriter(LAYER_TYPE);
    try {
      for await (const it of store.layerItems(layer.id)) {
        writer.writeInline(it.raw);
        stats.bytesInlined += it.raw.length;
        if (it.type === "end" || !it.content) continue;
        if (isRegularTypeflag(it.typeflag) && it.size > INLINE_CONTENT_MAX) {
          writer.addExternal(await storeExternal(repo, it, { ...opts, verifyCrc: verify }, stats), it.size);
        } else {
          for await (const c of readContent(it, verify)) {
            writer.writeInline(c);
            stats.bytesInlined += c.length;
          }
        }
      }
      await repo.flush();
    } catch (e) {
      writer.abort();
      throw e;
    }
    const id = repo.writeStream(writer, contentId);
    stats.layers++;
    return { id, alreadyPresent: false, stats };
  });
}

/** Result of {@link importStorageImage}: each layer's splitstream, in config diff_id order. */
export interface ImageLayersImport {
  layers: { diffId: Digest; id: ObjectId }[];
  stats: ImportStats;
}

/**
 * Imports every layer of a storage image (base first, sequentially, under one storage lock).
 * Writing the config and manifest splitstreams and the EROFS image is the pull's job.
 *
 * @example
 * ```ts
 * const src = await ContainersStorageSource.open("containers-storage:localhost/app:1");
 * const { layers, stats } = await importStorageImage(repo, src, { zeroCopy: true });
 * ```
 */
export async function importStorageImage(
  repo: Repository,
  src: ContainersStorageSource,
  opts: ZeroCopyOptions = {},
): Promise<ImageLayersImport> {
  const stats = emptyStats();
  const layers: { diffId: Digest; id: ObjectId }[] = [];
  using _ = await src.store.lock();
  for (const l of src.layers) {
    const r = await importStorageLayer(repo, src.store, l.layer, opts);
    addStats(stats, r.stats);
    layers.push({ diffId: l.diffId, id: r.id });
  }
  return { layers, stats };
}
