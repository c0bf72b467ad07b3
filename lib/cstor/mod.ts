/**
 * Native containers-storage reading (oci-and-boot.md §10): storage metadata, image lookup,
 * tar-split layer reconstruction (exact tar streams whose sha256 is the diff_id), zero-copy
 * layer import into a repository, and `containers-storage:` as an image source.
 *
 * @example
 * ```ts
 * import { ContainersStorage, importStorageLayer } from "./mod.ts";
 * const store = await ContainersStorage.open("/var/lib/containers/storage");
 * using _ = await store.lock();
 * const image = await store.findImage("localhost/app:1");
 * for (const layer of await store.imageLayers(image)) await importStorageLayer(repo, store, layer);
 * ```
 *
 * @module
 */
export { Crc64, crc64 } from "./crc64.ts";
export {
  bigDataFileName,
  configKey,
  layerChain,
  parseImagesJson,
  parseLayersJson,
  type StorageImage,
  type StorageLayer,
} from "./metadata.ts";
export {
  parseTarSplit,
  parseTarSplitLine,
  readTarSplit,
  type TarSplitEntry,
  type TarSplitFile,
  type TarSplitSegment,
} from "./tarsplit.ts";
export {
  type ContentFile,
  type ContentResolver,
  isRegularTypeflag,
  type LayerEnd,
  type LayerEntry,
  type LayerItem,
  layerItems,
  layerTar,
  readContent,
} from "./layer.ts";
export { ContainersStorage, entryRelPath, matchImage, type StorageDriver, type StorageOpenOptions } from "./store.ts";
export {
  addStats,
  emptyStats,
  type ImageLayersImport,
  type ImportStats,
  importStorageImage,
  importStorageLayer,
  type LayerImport,
  type ZeroCopyOptions,
} from "./import.ts";
export {
  ContainersStorageSource,
  defaultStorageRoots,
  parseStorageReference,
  type StorageLayerInfo,
  type StorageReference,
  type StorageSourceOptions,
} from "./source.ts";
