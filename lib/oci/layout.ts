/**
 * OCI image layouts as image sources: a directory (`oci:DIR[:TAG]`) or the same layout packed in a
 * tar file (`oci-archive:FILE[:TAG]`, read member by member through a {@link TarFileIndex}).
 *
 * @module
 */
import { type Digest, parseDigest } from "./digest.ts";
import { readFileChunks } from "../tar/mod.ts";
import { TarFileIndex } from "./archive_index.ts";
import {
  type Descriptor,
  type ImageIndex,
  parseJson,
  parseManifest,
  type Platform,
  selectPlatform,
} from "./manifest.ts";
import { isIndexType, isManifestType } from "./mediatype.ts";
import {
  type BlobLocation,
  type BlobRef,
  type ImageSource,
  type ManifestBlob,
  readBlobBytes,
  verifiedStream,
} from "./source.ts";

/** The annotation that names an image inside a layout. */
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";

/** Read access to the files of a layout, wherever they are stored. */
interface LayoutFiles {
  readonly where: string;
  size(path: string): Promise<number | null>;
  read(path: string): AsyncIterable<Uint8Array>;
  readAll(path: string): Promise<Uint8Array>;
  /** The file and offset holding `path`'s bytes (`path` exists). */
  locate(path: string): { path: string; offset: number };
}

function dirFiles(dir: string): LayoutFiles {
  return {
    where: dir,
    async size(p) {
      try {
        const st = await Deno.stat(`${dir}/${p}`);
        return st.isFile ? st.size : null;
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return null;
        throw e;
      }
    },
    read: (p) => readFileChunks(`${dir}/${p}`),
    readAll: (p) => Deno.readFile(`${dir}/${p}`),
    locate: (p) => ({ path: `${dir}/${p}`, offset: 0 }),
  };
}

function archiveFiles(idx: TarFileIndex): LayoutFiles {
  return {
    where: idx.path,
    size: (p) => Promise.resolve(idx.get(p)?.size ?? null),
    read: (p) => idx.read(p),
    readAll: (p) => idx.readAll(p),
    locate: (p) => ({ path: idx.path, offset: idx.require(p).offset }),
  };
}

/** Options for opening a layout. */
export interface LayoutOptions {
  /** The platform to pick from an index (default: the host's). */
  platform?: Platform;
}

const MAX_INDEX_DEPTH = 4;

/**
 * An OCI layout (directory or archive) opened for one image: the tagged one, or the only one,
 * or the one for the platform. Every blob read is verified against its digest and size.
 *
 * @example
 * ```ts
 * const src = await OciLayoutSource.openDir("/srv/layout", "v1");
 * const { digest } = await src.getManifest();
 * ```
 */
export class OciLayoutSource implements ImageSource {
  #files: LayoutFiles;
  #tag: string | undefined;
  #platform: Platform | undefined;
  #manifest: Promise<ManifestBlob> | undefined;

  private constructor(files: LayoutFiles, tag: string | undefined, opts: LayoutOptions) {
    this.#files = files;
    this.#tag = tag;
    this.#platform = opts.platform;
  }

  /** Opens the layout directory `dir`. */
  static async openDir(dir: string, tag?: string, opts: LayoutOptions = {}): Promise<OciLayoutSource> {
    const src = new OciLayoutSource(dirFiles(dir), tag, opts);
    await src.#checkLayout();
    return src;
  }

  /** Opens an `oci-archive` tar file (indexed once; nothing is extracted). */
  static async openArchive(file: string, tag?: string, opts: LayoutOptions = {}): Promise<OciLayoutSource> {
    const src = new OciLayoutSource(archiveFiles(await TarFileIndex.open(file)), tag, opts);
    await src.#checkLayout();
    return src;
  }

  async #checkLayout(): Promise<void> {
    if ((await this.#files.size("oci-layout")) === null) {
      throw new Error(`${this.#files.where} is not an OCI layout (no oci-layout file)`);
    }
    const j = parseJson(await this.#files.readAll("oci-layout"), `${this.#files.where}: oci-layout`) as {
      imageLayoutVersion?: unknown;
    } | null;
    if (typeof j?.imageLayoutVersion !== "string") {
      throw new Error(`${this.#files.where}: oci-layout has no imageLayoutVersion`);
    }
  }

  /** The raw `index.json` of the layout, parsed. */
  async index(): Promise<ImageIndex> {
    const bytes = await this.#files.readAll("index.json");
    const parsed = parseManifest(bytes, undefined);
    if (parsed.kind !== "index") throw new Error(`${this.#files.where}: index.json is not an image index`);
    return parsed;
  }

  /** The image manifest (resolved once: tag, then platform). */
  getManifest(): Promise<ManifestBlob> {
    this.#manifest ??= this.#resolve();
    return this.#manifest;
  }

  async #resolve(): Promise<ManifestBlob> {
    const index = await this.index();
    let desc: Descriptor;
    if (this.#tag !== undefined) {
      const tagged = index.manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] === this.#tag);
      if (tagged.length === 0) {
        const tags = index.manifests.map((d) => d.annotations?.[REF_NAME_ANNOTATION]).filter((t) => t);
        throw new Error(
          `${this.#files.where}: no image tagged ${JSON.stringify(this.#tag)} (tags: ${tags.join(", ") || "none"})`,
        );
      }
      desc = tagged.length === 1 ? tagged[0] : selectPlatform({ ...index, manifests: tagged }, this.#platform);
    } else if (index.manifests.length === 1) {
      desc = index.manifests[0];
    } else {
      desc = selectPlatform(index, this.#platform);
    }
    for (let depth = 0; isIndexType(desc.mediaType); depth++) {
      if (depth >= MAX_INDEX_DEPTH) throw new Error(`${this.#files.where}: image indexes nested too deeply`);
      const bytes = await readBlobBytes(this, desc);
      const sub = parseManifest(bytes, desc.mediaType);
      if (sub.kind !== "index") throw new Error(`${desc.digest} is not an image index`);
      desc = selectPlatform(sub, this.#platform);
    }
    if (!isManifestType(desc.mediaType)) {
      throw new Error(
        `${this.#files.where}: ${desc.digest} has unsupported media type ${JSON.stringify(desc.mediaType)}`,
      );
    }
    const bytes = await readBlobBytes(this, desc);
    const m = parseManifest(bytes, desc.mediaType);
    if (m.kind !== "manifest") throw new Error(`${desc.digest} is not an image manifest`);
    return { bytes, digest: desc.digest, mediaType: desc.mediaType };
  }

  /** The blob at `blobs/<alg>/<hex>`, verified; a missing blob or wrong size fails before streaming. */
  async getBlob(descriptor: BlobRef): Promise<ReadableStream<Uint8Array>> {
    const { digest, path } = await this.#blobPath(descriptor);
    return verifiedStream(this.#files.read(path), digest, descriptor.size);
  }

  /** Where the blob lies: its file in a directory, its member in an archive. */
  async blobLocation(descriptor: BlobRef): Promise<BlobLocation> {
    const { digest, path } = await this.#blobPath(descriptor);
    return { kind: "file", file: { ...this.#files.locate(path), size: descriptor.size, digest } };
  }

  async #blobPath(descriptor: BlobRef): Promise<{ digest: Digest; path: string }> {
    const digest: Digest = parseDigest(descriptor.digest);
    const path = `blobs/${digest.replace(":", "/")}`;
    const size = await this.#files.size(path);
    if (size === null) throw new Error(`blob ${digest}: not found in ${this.#files.where}`);
    if (size !== descriptor.size) {
      throw new Error(`blob ${digest}: size mismatch: the layout has ${size} bytes, expected ${descriptor.size}`);
    }
    return { digest, path };
  }

  close(): void {}
}
