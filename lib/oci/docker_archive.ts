/**
 * `docker-archive:` (what `docker save` / `podman save --format docker-archive` write) as an image
 * source. The archive has no registry manifest, so a Docker v2s2 manifest is synthesised from
 * `manifest.json`, the config and the layer tars byte for byte as containers/image does (so the
 * manifest digest is the one skopeo reports): every layer blob is the *uncompressed* tar, named
 * by its diff_id, with the Docker gzip media type; compressed layer files are decompressed on
 * the fly (and once at open time to learn their size).
 *
 * @module
 */
import { digestOf, parseDigest } from "./digest.ts";
import { readFileChunks } from "../tar/mod.ts";
import { TarFileIndex } from "./archive_index.ts";
import { parseImageConfig, parseJson } from "./manifest.ts";
import { type Compression, MediaType } from "./mediatype.ts";
import { decompress, detectCompression } from "./decompress.ts";
import { type DockerReference, formatDockerReference, parseDockerReference } from "./reference.ts";
import { type BlobRef, type ImageSource, type ManifestBlob, verifiedStream } from "./source.ts";

interface ArchiveItem {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

/** Where a blob lives in the archive, and how it is stored there. */
interface BlobEntry {
  path: string;
  compression: Compression;
}

/** Which image of a multi-image archive: by name, or by position in `manifest.json`. */
export type DockerArchiveSelector = { ref: DockerReference } | { index: number } | undefined;

/**
 * One image of a docker-archive file.
 *
 * @example
 * ```ts
 * const src = await DockerArchiveSource.open("image.tar");
 * const { bytes, digest } = await src.getManifest(); // synthesised Docker v2s2 manifest
 * ```
 */
export class DockerArchiveSource implements ImageSource {
  #idx: TarFileIndex;
  #manifest: ManifestBlob;
  #blobs: Map<string, BlobEntry>;

  private constructor(idx: TarFileIndex, manifest: ManifestBlob, blobs: Map<string, BlobEntry>) {
    this.#idx = idx;
    this.#manifest = manifest;
    this.#blobs = blobs;
  }

  /** Indexes `file` and prepares the manifest of the selected (or only) image. */
  static async open(file: string, selector?: DockerArchiveSelector): Promise<DockerArchiveSource> {
    const idx = await TarFileIndex.open(file);
    const items = parseJson(await idx.readAll("manifest.json"), `${file}: manifest.json`) as ArchiveItem[];
    if (!Array.isArray(items) || items.length === 0) throw new Error(`${file}: manifest.json lists no images`);
    const item = pick(file, items, selector);
    if (typeof item.Config !== "string" || !Array.isArray(item.Layers)) {
      throw new Error(`${file}: manifest.json entry needs Config and Layers`);
    }
    const configBytes = await idx.readAll(item.Config);
    const configDigest = digestOf(configBytes);
    const config = parseImageConfig(configBytes);
    if (config.diffIds.length !== item.Layers.length) {
      throw new Error(`${file}: ${item.Layers.length} layer files but ${config.diffIds.length} diff_ids in the config`);
    }
    const blobs = new Map<string, BlobEntry>([[configDigest, { path: item.Config, compression: "none" }]]);
    const layers = [];
    for (let i = 0; i < item.Layers.length; i++) {
      const path = item.Layers[i];
      const compression = detectCompression(await readHead(idx, path));
      // Like containers/image: the blob is the uncompressed layer, named by its diff_id.
      const size = compression === "none" ? idx.require(path).size : await uncompressedSize(idx, path, compression);
      blobs.set(config.diffIds[i], { path, compression });
      layers.push({ mediaType: MediaType.dockerLayerGzip, size, digest: config.diffIds[i] });
    }
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaType.dockerManifest,
      config: { mediaType: MediaType.dockerConfig, size: configBytes.length, digest: configDigest },
      layers,
    };
    const bytes = new TextEncoder().encode(JSON.stringify(manifest));
    return new DockerArchiveSource(idx, { bytes, digest: digestOf(bytes), mediaType: MediaType.dockerManifest }, blobs);
  }

  getManifest(): Promise<ManifestBlob> {
    return Promise.resolve(this.#manifest);
  }

  /** A layer (uncompressed, verified against its diff_id) or the config. */
  getBlob(descriptor: BlobRef): Promise<ReadableStream<Uint8Array>> {
    const digest = parseDigest(descriptor.digest);
    const blob = this.#blobs.get(digest);
    if (!blob) return Promise.reject(new Error(`blob ${digest}: not in ${this.#idx.path}`));
    const raw = this.#idx.read(blob.path);
    const data = blob.compression === "none" ? raw : decompress(raw, blob.compression);
    return Promise.resolve(verifiedStream(data, digest, descriptor.size));
  }

  close(): void {}
}

function pick(file: string, items: ArchiveItem[], sel: DockerArchiveSelector): ArchiveItem {
  if (sel && "index" in sel) {
    const item = items[sel.index];
    if (!item) throw new Error(`${file}: no image @${sel.index} (the archive has ${items.length})`);
    return item;
  }
  if (sel && "ref" in sel) {
    const want = formatDockerReference(sel.ref);
    const item = items.find((it) =>
      (it.RepoTags ?? []).some((t) => {
        try {
          return formatDockerReference(parseDockerReference(t, "latest")) === want;
        } catch {
          return false;
        }
      })
    );
    if (!item) throw new Error(`${file}: no image named ${want}`);
    return item;
  }
  if (items.length > 1) {
    throw new Error(`${file}: the archive holds ${items.length} images; name one (docker-archive:FILE:NAME or :@N)`);
  }
  return items[0];
}

async function readHead(idx: TarFileIndex, path: string): Promise<Uint8Array> {
  const m = idx.require(path);
  const parts = await Array.fromAsync(readFileChunks(idx.path, { offset: m.offset, length: Math.min(4, m.size) }));
  return parts[0] ?? new Uint8Array(0);
}

async function uncompressedSize(idx: TarFileIndex, path: string, compression: Compression): Promise<number> {
  let n = 0;
  for await (const c of decompress(idx.read(path), compression)) n += c.length;
  return n;
}
