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
import type { Repository, Stored, StoreMethod } from "../repository/mod.ts";
import type { ObjectId } from "../repository/objectid.ts";
import type { HelperSlot } from "../oci/store_helper.ts";
import { StreamOrder } from "../oci/stream_order.ts";
import { contentType, INLINE_CONTENT_MAX } from "../splitstream/mod.ts";
import { withContext } from "../error/mod.ts";
import { Crc64 } from "./crc64.ts";
import { checkCrc64, isRegularTypeflag, readContent } from "./layer.ts";
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

/** Options of {@link importStorageLayer}. */
export interface StorageImportOptions extends ZeroCopyOptions {
  /** Where another thread may be lent to store the layer's files (lib/oci/store_helper.ts). */
  helper?: HelperSlot;
}

/** Options of {@link storeLayerFile}. */
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

function count(stats: ImportStats, method: StoreMethod, size: number): void {
  switch (method) {
    case "copied":
      stats.objectsCopied++;
      stats.bytesCopied += size;
      break;
    case "reflinked":
      stats.objectsReflinked++;
      stats.bytesReflinked += size;
      break;
    case "hardlinked":
      stats.objectsHardlinked++;
      stats.bytesHardlinked += size;
      break;
    case "present":
      stats.objectsAlreadyPresent++;
  }
}

async function drain(src: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const _ of src) { /* reading is the check */ }
}

/** A layer file to store as an object: what {@link storeLayerFile} needs, as plain data (for another thread). */
export interface LayerFile {
  /** The entry name, for messages. */
  name: string;
  /** The file in the layer's directory. */
  path: string;
  size: number;
  /** CRC-64/GO-ISO recorded by tar-split, checked unless `verifyCrc` is false. */
  crc64: Uint8Array | null;
}

/**
 * Stores a layer file as an object (reflink, else hardlink, else copy) and checks it: its size,
 * its CRC-64, and with `zeroCopy` that it was not copied.
 */
export async function storeLayerFile(repo: Repository, file: LayerFile, opts: ZeroCopyOptions): Promise<Stored> {
  const { path } = file;
  const verify = opts.verifyCrc !== false && file.crc64 !== null;
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
  if (stored.size !== file.size) {
    throw new Error(`${path} has ${stored.size} bytes, tar-split records ${file.size}`);
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
      if (crc && seen === file.size) return checkCrc64(file, crc.digest(), path);
      const fd = repo.openObject(stored.id);
      try {
        await drain(readContent({ ...file, content: { path: `/proc/self/fd/${fd}` } }));
      } finally {
        close(fd);
      }
    });
  }
  return stored;
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
  opts: StorageImportOptions = {},
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
    const fileOpts: ZeroCopyOptions = { zeroCopy: opts.zeroCopy, verifyCrc: opts.verifyCrc ?? true };
    const writer = repo.createStreamWriter(LAYER_TYPE);
    const out = new StreamOrder(writer, (s) => count(stats, s.method, s.size));
    try {
      for await (const it of store.layerItems(layer.id)) {
        // Fresh arrays, never reused: a piece that waits needs no copy.
        out.inline(it.raw, false);
        stats.bytesInlined += it.raw.length;
        if (it.type === "end" || !it.content) continue;
        if (isRegularTypeflag(it.typeflag) && it.size > INLINE_CONTENT_MAX) {
          const file: LayerFile = { name: it.name, path: it.content.path, size: it.size, crc64: it.crc64 };
          const pending = opts.helper?.stores?.storeFile(file, fileOpts);
          if (pending) out.pending(pending);
          else out.stored(await storeLayerFile(repo, file, fileOpts));
        } else {
          for await (const c of readContent(it, fileOpts.verifyCrc)) {
            out.inline(c, false);
            stats.bytesInlined += c.length;
          }
        }
        out.emit();
      }
      await opts.helper?.close()?.finish();
      out.emit();
      out.checkDone();
      await repo.flush();
    } catch (e) {
      opts.helper?.close()?.release();
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
