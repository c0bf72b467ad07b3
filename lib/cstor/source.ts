/**
 * `containers-storage:[[ROOT]]NAME` as an image source (oci-and-boot.md §3.5, §10.2): the
 * manifest and config exactly as the storage keeps them, and each layer as its rebuilt,
 * uncompressed tar stream, verified against the layer's diff_id.
 *
 * @module
 */
import { parseManifest } from "../oci/manifest.ts";
import { parseImageReference } from "../oci/reference.ts";
import type { BlobRef, ImageSource, ManifestBlob } from "../oci/source.ts";
import { verifiedStream } from "../oci/source.ts";
import { type Digest, digestOf } from "../oci/digest.ts";
import { parseImageConfig } from "../oci/manifest.ts";
import type { StorageImage, StorageLayer } from "./metadata.ts";
import { ContainersStorage } from "./store.ts";

/** A parsed `containers-storage:` reference: the store (if given) and the name or id text. */
export interface StorageReference {
  root?: string;
  runRoot?: string;
  driver?: string;
  /** The image name, id, id prefix or digest exactly as written. */
  name: string;
}

/**
 * Splits `containers-storage:[[driver@]ROOT[+RUNROOT][:options]]NAME`. The name is kept verbatim
 * (short ids and unnormalised names are resolved against the store, not here).
 */
export function parseStorageReference(ref: string): StorageReference {
  const prefix = "containers-storage:";
  if (!ref.startsWith(prefix)) throw new Error(`${JSON.stringify(ref)} is not a containers-storage: reference`);
  const parsed = parseImageReference(ref);
  if (parsed.transport !== "containers-storage") throw new Error(`${ref}: not a containers-storage reference`);
  const rest = ref.slice(prefix.length);
  const name = rest.startsWith("[") ? rest.slice(rest.indexOf("]") + 1) : rest;
  const out: StorageReference = { name };
  if (parsed.store) {
    out.root = parsed.store.root;
    if (parsed.store.runRoot) out.runRoot = parsed.store.runRoot;
    if (parsed.store.driver) out.driver = parsed.store.driver;
  }
  return out;
}

/**
 * Storage roots searched when a reference names none, in order: `$CONTAINERS_STORAGE_ROOT`,
 * `$XDG_DATA_HOME/containers/storage`, `~/.local/share/containers/storage`,
 * `/var/lib/containers/storage`, then every `additionalimagestore=` of `$STORAGE_OPTS`.
 */
export function defaultStorageRoots(env: (k: string) => string | undefined = (k) => Deno.env.get(k)): string[] {
  const roots: string[] = [];
  const root = env("CONTAINERS_STORAGE_ROOT");
  if (root) roots.push(root);
  const home = env("HOME");
  if (home) {
    const xdg = env("XDG_DATA_HOME");
    if (xdg) roots.push(`${xdg}/containers/storage`);
    roots.push(`${home}/.local/share/containers/storage`);
  }
  roots.push("/var/lib/containers/storage");
  for (const opt of (env("STORAGE_OPTS") ?? "").split(",")) {
    const m = /^\s*(?:[a-z]+\.)?additionalimagestore\s*=\s*(.+?)\s*$/.exec(opt);
    if (m) roots.push(m[1]);
  }
  return [...new Set(roots)];
}

/** One layer of a storage image as the importer needs it. */
export interface StorageLayerInfo {
  /** The uncompressed tar digest (from the config). */
  diffId: Digest;
  /** Its size, when the storage recorded it. */
  size: number | null;
  layer: StorageLayer;
}

/** Options of {@link ContainersStorageSource.open}. */
export interface StorageSourceOptions {
  /** Use this root instead of the reference's or the default search list. */
  root?: string;
  runRoot?: string;
}

/**
 * An image in containers-storage, opened as an {@link ImageSource}. `getBlob` serves the config
 * by its digest and each layer (asked for by its manifest blob digest, its compressed digest, or
 * its diff_id) as the **uncompressed** tar rebuilt from tar-split, verified against the diff_id.
 *
 * @example
 * ```ts
 * const src = await ContainersStorageSource.open("containers-storage:[/var/lib/containers/storage]localhost/x:1");
 * const img = await loadImage(src);
 * for (const l of src.layers) importLayer(l.diffId, await src.getBlob({ digest: l.diffId, size: l.size ?? 0 }));
 * ```
 */
export class ContainersStorageSource implements ImageSource {
  readonly store: ContainersStorage;
  readonly image: StorageImage;
  readonly configBytes: Uint8Array;
  readonly configDigest: Digest;
  readonly manifest: ManifestBlob;
  /** The image's layers, base first, matched with the config's diff_ids. */
  readonly layers: readonly StorageLayerInfo[];
  #byDigest = new Map<string, StorageLayerInfo>();

  private constructor(
    store: ContainersStorage,
    image: StorageImage,
    configBytes: Uint8Array,
    manifest: ManifestBlob,
    layers: StorageLayerInfo[],
    manifestLayerDigests: string[],
  ) {
    this.store = store;
    this.image = image;
    this.configBytes = configBytes;
    this.configDigest = digestOf(configBytes);
    this.manifest = manifest;
    this.layers = layers;
    layers.forEach((l, i) => {
      for (const d of [l.diffId, l.layer.compressedDigest, manifestLayerDigests[i]]) if (d) this.#byDigest.set(d, l);
    });
  }

  /** Opens the image a `containers-storage:` reference names. */
  static async open(ref: string, opts: StorageSourceOptions = {}): Promise<ContainersStorageSource> {
    const r = parseStorageReference(ref);
    const root = opts.root ?? r.root;
    const runRoot = opts.runRoot ?? r.runRoot;
    const candidates = root ? [root] : defaultStorageRoots();
    const tried: string[] = [];
    for (const c of candidates) {
      let store: ContainersStorage;
      try {
        store = await ContainersStorage.open(c, { runRoot, driver: r.driver });
      } catch (e) {
        if (root) throw e;
        continue; // not a usable store: try the next default location
      }
      tried.push(store.root);
      using _ = await store.lock();
      const image = await store.findImage(r.name).catch((e) => {
        if (root || !/not found/.test((e as Error).message)) throw e;
        return null;
      });
      if (!image) continue;
      return await ContainersStorageSource.#load(store, image);
    }
    throw new Error(
      `image ${JSON.stringify(r.name)} not found in containers-storage (searched: ${tried.join(", ") || "no store"})`,
    );
  }

  /** Opens `image` of an already opened store. */
  static async fromImage(store: ContainersStorage, image: StorageImage): Promise<ContainersStorageSource> {
    using _ = await store.lock();
    return await ContainersStorageSource.#load(store, image);
  }

  static async #load(store: ContainersStorage, image: StorageImage): Promise<ContainersStorageSource> {
    const configBytes = await store.imageConfig(image);
    const manifestBytes = await store.imageManifest(image);
    const parsed = parseManifest(manifestBytes);
    if (parsed.kind !== "manifest") throw new Error(`image ${image.id}: the stored manifest is an index`);
    const config = parseImageConfig(configBytes);
    const chain = await store.checkedLayers(image, config.diffIds);
    if (parsed.layers.length !== chain.length) {
      throw new Error(`image ${image.id}: the manifest has ${parsed.layers.length} layers, storage ${chain.length}`);
    }
    const layers = chain.map((layer, i) => ({ diffId: config.diffIds[i], size: layer.diffSize, layer }));
    const manifest = { bytes: manifestBytes, digest: digestOf(manifestBytes), mediaType: parsed.mediaType };
    return new ContainersStorageSource(store, image, configBytes, manifest, layers, parsed.layers.map((l) => l.digest));
  }

  /** The manifest bytes as stored; its digest is of these bytes (may differ from the registry's). */
  getManifest(): Promise<ManifestBlob> {
    return Promise.resolve(this.manifest);
  }

  /** The config (by its digest) or a layer's uncompressed tar (by blob digest or diff_id). */
  getBlob(descriptor: BlobRef): Promise<ReadableStream<Uint8Array>> {
    if (descriptor.digest === this.configDigest) {
      return Promise.resolve(
        verifiedStream(ReadableStream.from([this.configBytes]), this.configDigest, this.configBytes.length),
      );
    }
    const l = this.#byDigest.get(descriptor.digest);
    if (!l) {
      return Promise.reject(new Error(`blob ${descriptor.digest} is not part of image ${this.image.id}`));
    }
    return Promise.resolve(this.layerStream(l));
  }

  /** Layer `l`'s rebuilt tar, verified against its diff_id (and recorded size); the storage lock is held while it streams. */
  layerStream(l: StorageLayerInfo): ReadableStream<Uint8Array> {
    const store = this.store;
    async function* gen(): AsyncGenerator<Uint8Array> {
      using _ = await store.lock();
      yield* store.layerTar(l.layer.id);
    }
    return verifiedStream(gen(), l.diffId, l.size ?? undefined, `layer ${l.diffId} (storage layer ${l.layer.id})`);
  }

  /** Nothing to release: locks are only held while reading. */
  close(): void {}
}
