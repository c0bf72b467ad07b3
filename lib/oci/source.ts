/**
 * The image source interface the import pipeline reads from, and helpers every source shares:
 * verified blob streams, small verified blob reads, and loading manifest + config + layer list.
 *
 * @module
 */
import { BlobVerifier, type Digest, parseDigest } from "./digest.ts";
import { type Descriptor, type ImageConfig, type ImageManifest, parseImageConfig, parseManifest } from "./manifest.ts";
import { isImageConfigType } from "./mediatype.ts";
import { readFileChunks } from "../tar/mod.ts";
import type { RegistryAccess } from "../registry/client.ts";

/** A manifest exactly as stored (never re-serialised: the digest is over these bytes). */
export interface ManifestBlob {
  bytes: Uint8Array;
  digest: Digest;
  mediaType: string;
}

/** What {@link ImageSource.getBlob} needs from a descriptor. */
export interface BlobRef {
  digest: string;
  size: number;
}

/** A blob's bytes as a region of a local file (a layout's blob, an archive member). */
export interface BlobFile {
  path: string;
  offset: number;
  size: number;
  digest: Digest;
}

/**
 * Where any thread can read a blob and verify it by itself, instead of being handed the bytes by
 * the thread that opened the source: a region of a local file, or a registry (plain data, for
 * `postMessage`).
 */
export type BlobLocation =
  | { kind: "file"; file: BlobFile }
  | { kind: "registry"; registry: RegistryAccess; descriptor: BlobRef };

/**
 * One image, opened for reading. `lib/registry`'s `RegistryImageSource` has the same shape.
 * The manifest is the platform-specific image manifest (an index is resolved when the source
 * is opened or on the first call).
 */
export interface ImageSource {
  getManifest(): Promise<ManifestBlob>;
  /** The blob as a stream that errors (naming the digest) unless its digest and size match. */
  getBlob(descriptor: BlobRef): Promise<ReadableStream<Uint8Array>>;
  /**
   * Where another thread can read the blob by itself, after the checks {@link getBlob} makes
   * before streaming; absent (or null) for sources whose blobs only they can produce (transcoded
   * archives). Read with {@link openBlobLocation}, which verifies digest and size.
   */
  blobLocation?(descriptor: BlobRef): Promise<BlobLocation | null>;
  close(): void;
}

/**
 * `src` passed through a digest and size check; the error names `what` (default `blob <digest>`).
 *
 * @example
 * ```ts
 * const s = verifiedStream(readFileChunks(path), desc.digest, desc.size);
 * ```
 */
export function verifiedStream(
  src: AsyncIterable<Uint8Array>,
  digest: string,
  size: number | undefined,
  what = `blob ${digest}`,
): ReadableStream<Uint8Array> {
  const v = new BlobVerifier(parseDigest(digest), size, what);
  async function* gen() {
    for await (const c of src) {
      v.update(c);
      yield c;
    }
    v.finish();
  }
  return ReadableStream.from(gen());
}

/** Bytes of `src` counted into `onBytes` as they pass. */
export async function* counting(
  src: AsyncIterable<Uint8Array>,
  onBytes?: (n: number) => void,
): AsyncGenerator<Uint8Array> {
  for await (const c of src) {
    onBytes?.(c.length);
    yield c;
  }
}

/** The bytes of the blob at `location`, verified against its digest and size as they stream. */
export async function openBlobLocation(location: BlobLocation): Promise<ReadableStream<Uint8Array>> {
  if (location.kind === "registry") {
    // Loaded only here: the registry client is not needed by imports from local files.
    const { RegistryClient } = await import("../registry/client.ts");
    const client = RegistryClient.fromAccess(location.registry);
    const blob = await client.getBlob(location.descriptor).catch((e) => {
      client.close();
      throw e;
    });
    // The client (its HTTP client, with CA certificates) lives as long as the stream.
    return ReadableStream.from(async function* () {
      try {
        yield* blob;
      } finally {
        client.close();
      }
    }());
  }
  const { path, offset, size, digest } = location.file;
  return verifiedStream(readFileChunks(path, { offset, length: size }), digest, size);
}

/** A small blob (manifest, config) read whole and verified; refuses blobs larger than `max` (4 MiB). */
export async function readBlobBytes(source: ImageSource, desc: BlobRef, max = 4 << 20): Promise<Uint8Array> {
  if (desc.size > max) throw new Error(`blob ${desc.digest} is too large to read into memory (${desc.size} bytes)`);
  const out = new Uint8Array(desc.size);
  let o = 0;
  for await (const c of await source.getBlob(desc)) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** One layer of an image: its blob descriptor and, for container images, its diff_id. */
export interface LayerInfo {
  descriptor: Descriptor;
  /** The uncompressed tar's digest from the config (null for artifacts). */
  diffId: Digest | null;
}

/** Everything the importer needs before fetching layers. */
export interface LoadedImage {
  manifest: ManifestBlob;
  parsed: ImageManifest;
  /** Raw config bytes (verified against the manifest's config descriptor). */
  configBytes: Uint8Array;
  /** The parsed config, or null for artifacts (config media type not an image config). */
  config: ImageConfig | null;
  layers: LayerInfo[];
}

/**
 * Reads manifest and config of `source` and pairs each layer with its diff_id (their counts
 * must match for a container image).
 *
 * @example
 * ```ts
 * const img = await loadImage(source);
 * for (const l of img.layers) await importLayer(l.diffId, await source.getBlob(l.descriptor));
 * ```
 */
export async function loadImage(source: ImageSource): Promise<LoadedImage> {
  const manifest = await source.getManifest();
  const parsed = parseManifest(manifest.bytes, manifest.mediaType);
  if (parsed.kind !== "manifest") throw new Error(`${manifest.digest} is an image index, not an image manifest`);
  const configBytes = await readBlobBytes(source, parsed.config);
  const config = isImageConfigType(parsed.config.mediaType) ? parseImageConfig(configBytes) : null;
  if (config && config.diffIds.length !== parsed.layers.length) {
    throw new Error(
      `manifest ${manifest.digest} has ${parsed.layers.length} layers but its config lists ${config.diffIds.length} diff_ids`,
    );
  }
  const layers = parsed.layers.map((descriptor, i) => ({ descriptor, diffId: config ? config.diffIds[i] : null }));
  return { manifest, parsed, configBytes, config, layers };
}
