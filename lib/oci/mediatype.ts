/**
 * OCI and Docker media types, and what bootcfs does with each (oci-and-boot.md §4.1).
 *
 * @module
 */

/** Media type strings. */
export const MediaType = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociEmpty: "application/vnd.oci.empty.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  ociLayerNd: "application/vnd.oci.image.layer.nondistributable.v1.tar",
  ociLayerNdGzip: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  ociLayerNdZstd: "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayer: "application/vnd.docker.image.rootfs.diff.tar",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  dockerForeignLayerGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  dockerSchema1: "application/vnd.docker.distribution.manifest.v1+json",
  dockerSchema1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
} as const;

/** How a layer blob is compressed. */
export type Compression = "none" | "gzip" | "zstd";

const LAYER_COMPRESSION: Record<string, Compression> = {
  [MediaType.ociLayer]: "none",
  [MediaType.ociLayerNd]: "none",
  [MediaType.dockerLayer]: "none",
  [MediaType.ociLayerGzip]: "gzip",
  [MediaType.ociLayerNdGzip]: "gzip",
  [MediaType.dockerLayerGzip]: "gzip",
  [MediaType.dockerForeignLayerGzip]: "gzip",
  [MediaType.ociLayerZstd]: "zstd",
  [MediaType.ociLayerNdZstd]: "zstd",
};

/** True for the media types of tar layers (any compression, OCI or Docker). */
export function isTarLayer(mediaType: string): boolean {
  return mediaType in LAYER_COMPRESSION;
}

/** The compression of a tar layer media type; anything else is an error naming the type. */
export function layerCompression(mediaType: string): Compression {
  const c = LAYER_COMPRESSION[mediaType];
  if (!c) throw new Error(`unsupported layer media type ${JSON.stringify(mediaType)}`);
  return c;
}

/** True for image manifest media types (OCI or Docker v2 schema 2). */
export function isManifestType(mediaType: string): boolean {
  return mediaType === MediaType.ociManifest || mediaType === MediaType.dockerManifest;
}

/** True for index / manifest list media types. */
export function isIndexType(mediaType: string): boolean {
  return mediaType === MediaType.ociIndex || mediaType === MediaType.dockerManifestList;
}

/** True for image config media types (a manifest with any other config type is an artifact). */
export function isImageConfigType(mediaType: string): boolean {
  return mediaType === MediaType.ociConfig || mediaType === MediaType.dockerConfig;
}
