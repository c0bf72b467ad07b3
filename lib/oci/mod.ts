/**
 * OCI image sources: references and transports, media types, manifests / indexes / configs,
 * platform selection, verified blob streams from OCI layouts, oci-archive and docker-archive
 * files, and layer decompression with a bomb guard. Nothing here touches the repository.
 *
 * @example
 * ```ts
 * import { decompressLayer, loadImage, openImageSource } from "./mod.ts";
 * const src = await openImageSource("oci:/srv/layout:v1");
 * const img = await loadImage(src);
 * for (const l of img.layers) {
 *   const tar = decompressLayer(await src.getBlob(l.descriptor), l.descriptor.mediaType);
 * }
 * ```
 *
 * @module
 */
export { BlobVerifier, type Digest, type DigestAlgorithm, digestOf, parseDigest } from "./digest.ts";
export { MediaType } from "./mediatype.ts";
export type { Compression } from "./mediatype.ts";
export { isImageConfigType, isIndexType, isManifestType, isTarLayer, layerCompression } from "./mediatype.ts";
export {
  formatPlatform,
  hostPlatform,
  parseDescriptor,
  parseImageConfig,
  parseManifest,
  parsePlatform,
  selectPlatform,
} from "./manifest.ts";
export type { Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform } from "./manifest.ts";
export { formatDockerReference, formatImageReference, parseDockerReference, parseImageReference } from "./reference.ts";
export type { DockerReference, ImageReference, StoreSpec } from "./reference.ts";
export { loadImage, readBlobBytes, verifiedStream } from "./source.ts";
export type { BlobRef, ImageSource, LayerInfo, LoadedImage, ManifestBlob } from "./source.ts";
export { OciLayoutSource, REF_NAME_ANNOTATION } from "./layout.ts";
export type { LayoutOptions } from "./layout.ts";
export { DockerArchiveSource } from "./docker_archive.ts";
export type { DockerArchiveSelector } from "./docker_archive.ts";
export { TarFileIndex } from "./archive_index.ts";
export type { TarMember } from "./archive_index.ts";
export { decompress, decompressLayer, detectCompression } from "./decompress.ts";
export type { DecompressLimits } from "./decompress.ts";
export { openImageSource } from "./open.ts";
export type { OpenSourceOptions } from "./open.ts";
export { commitImages, createFilesystem } from "./filesystem.ts";
export type { CreateFilesystemOptions } from "./filesystem.ts";
export {
  BOOT_REF_PREFIX,
  configContentId,
  CONTENT_TYPE,
  IMAGE_REF_V1,
  IMAGE_REF_V2,
  imageRefKey,
  type ImageRefs,
  type ImageSummary,
  inspectImage,
  layerContentId,
  type LayerRefs,
  listImages,
  listTags,
  manifestContentId,
  OciImage,
  tagImage,
  tagRef,
  untagImage,
  writeConfigStream,
  writeManifestStream,
} from "./store.ts";
export { countObject, importLayer, type LayerImportOptions, type LayerImportResult } from "./layer_import.ts";
export { commitLayers, ensureComposefsErofs, type ErofsCommit } from "./erofs_image.ts";
export { upgradeRepo, type UpgradeResult } from "./upgrade.ts";
export { type LocalFetch, openSource, pull, type PulledLayer, type PullOptions, type PullResult } from "./pull.ts";
