/**
 * A containers-storage graph root opened for reading: driver detection (overlay, vfs), shared
 * locks, layer and image metadata, image lookup, big-data items, layer chains, and the per-layer
 * tar-split + directory access that rebuilds layers (oci-and-boot.md §10.1–10.2, test-rig.md §7).
 *
 * @module
 */
import { close, flock, llistxattr, LOCK_NB, LOCK_SH, lstat, O_CREAT, O_RDONLY, O_RDWR, open } from "../../ffi/libc.ts";
import { formatDockerReference, parseDockerReference } from "../oci/reference.ts";
import { type Digest, parseDigest } from "../oci/digest.ts";
import { type ContentFile, type LayerItem, layerItems, layerTar } from "./layer.ts";
import {
  bigDataFileName,
  configKey,
  layerChain,
  parseImagesJson,
  parseLayersJson,
  type StorageImage,
  type StorageLayer,
} from "./metadata.ts";
import { readTarSplit, type TarSplitEntry } from "./tarsplit.ts";

/** Graph drivers whose layout this module reads. */
export type StorageDriver = "overlay" | "vfs";

/** Options of {@link ContainersStorage.open}. */
export interface StorageOpenOptions {
  /** The run root (only read for `volatile-layers.json`). */
  runRoot?: string;
  /** Expected driver; by default the one whose metadata directories exist. */
  driver?: string;
  /** How long to wait for a shared lock before failing (default 30 s). */
  lockTimeoutMs?: number;
}

const MAX_LAYER_DEPTH = 500;
const METACOPY_XATTRS = ["trusted.overlay.metacopy", "user.overlay.metacopy"];

async function readOptional(path: string): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Layer-relative path of a tar entry name: leading `/` and `./` dropped; `..` refused. */
export function entryRelPath(name: string): string {
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw new Error(`tar entry name ${JSON.stringify(name)} contains ".."`);
  if (parts.length === 0) throw new Error(`tar entry name ${JSON.stringify(name)} names the root`);
  return parts.join("/");
}

/**
 * One containers-storage root. Reads are done under shared `flock`s on the driver's
 * `layers.lock` and `images.lock` ({@link lock}); nothing here ever writes to the storage
 * (except creating a missing lock file, as containers-storage readers do).
 *
 * @example
 * ```ts
 * const store = await ContainersStorage.open("/var/lib/containers/storage");
 * using _ = await store.lock();
 * const image = await store.findImage("quay.io/fedora/fedora-bootc:42");
 * for (const layer of await store.imageLayers(image)) console.log(layer.id, layer.diffDigest);
 * ```
 */
export class ContainersStorage {
  readonly root: string;
  readonly driver: StorageDriver;
  readonly runRoot: string | undefined;
  #lockTimeout: number;
  #lockFds: number[] = [];
  #lockCount = 0;
  #layers: Map<string, StorageLayer> | null = null;
  #images: StorageImage[] | null = null;
  #realDirs = new Map<string, string>();

  private constructor(root: string, driver: StorageDriver, opts: StorageOpenOptions) {
    this.root = root;
    this.driver = driver;
    this.runRoot = opts.runRoot;
    this.#lockTimeout = opts.lockTimeoutMs ?? 30_000;
  }

  /** Opens `root`; fails naming what is missing, or the driver when it is neither overlay nor vfs. */
  static async open(root: string, opts: StorageOpenOptions = {}): Promise<ContainersStorage> {
    const abs = await Deno.realPath(root).catch((e) => {
      if (e instanceof Deno.errors.NotFound) throw new Error(`containers-storage root ${root} does not exist`);
      throw e;
    });
    const present = [...Deno.readDirSync(abs)].filter((e) => e.isDirectory && e.name.endsWith("-layers"))
      .map((e) => e.name.slice(0, -"-layers".length));
    const wanted = opts.driver ?? (present.length === 1 ? present[0] : undefined);
    if (wanted === undefined) {
      throw new Error(
        present.length === 0
          ? `${abs} is not a containers-storage root (no <driver>-layers directory)`
          : `${abs} holds several drivers (${present.join(", ")}); name one`,
      );
    }
    if (wanted !== "overlay" && wanted !== "vfs") {
      throw new Error(`${abs}: the ${wanted} storage driver is not supported (only overlay and vfs)`);
    }
    for (const d of [`${wanted}-layers`, `${wanted}-images`, wanted]) {
      if (lstat(`${abs}/${d}`) === null) {
        throw new Error(`${abs} is not a ${wanted} containers-storage root (no ${d}/)`);
      }
    }
    return new ContainersStorage(abs, wanted, opts);
  }

  /** `<root>/<driver>-layers`. */
  get layersDir(): string {
    return `${this.root}/${this.driver}-layers`;
  }

  /** `<root>/<driver>-images`. */
  get imagesDir(): string {
    return `${this.root}/${this.driver}-images`;
  }

  /**
   * Takes shared `flock`s on `layers.lock` and `images.lock` (nested calls share them) until the
   * returned handle is disposed. Metadata read under a lock is re-read under the next one.
   */
  async lock(): Promise<Disposable> {
    if (this.#lockCount++ === 0) {
      try {
        for (const f of [`${this.layersDir}/layers.lock`, `${this.imagesDir}/images.lock`]) {
          this.#lockFds.push(await this.#lockShared(f));
        }
      } catch (e) {
        this.#unlock();
        throw e;
      }
    }
    let released = false;
    return {
      [Symbol.dispose]: () => {
        if (released) return;
        released = true;
        this.#unlock();
      },
    };
  }

  #unlock(): void {
    if (--this.#lockCount > 0) return;
    this.#lockCount = 0;
    for (const fd of this.#lockFds.splice(0)) close(fd);
    // Everything read under the lock may change once it is released.
    this.#layers = null;
    this.#images = null;
    this.#realDirs.clear();
  }

  async #lockShared(path: string): Promise<number> {
    let fd: number;
    try {
      fd = open(path, O_RDWR | O_CREAT, 0o644);
    } catch {
      fd = open(path, O_RDONLY); // a read-only store: flock works on any fd
    }
    const deadline = Date.now() + this.#lockTimeout;
    // Non-blocking attempts: a blocking flock through FFI would stall the whole event loop.
    while (!flock(fd, LOCK_SH | LOCK_NB, path)) {
      if (Date.now() > deadline) {
        close(fd);
        throw new Error(`timed out waiting for a shared lock on ${path}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return fd;
  }

  #requireLock(what: string): void {
    if (this.#lockCount === 0) throw new Error(`containers-storage: ${what} needs the storage lock (lock())`);
  }

  /** All layers (`layers.json` and, with a run root, `volatile-layers.json`) by id. */
  async layers(): Promise<Map<string, StorageLayer>> {
    this.#requireLock("reading layers");
    if (this.#layers) return this.#layers;
    const map = new Map<string, StorageLayer>();
    const files = [`${this.layersDir}/layers.json`];
    if (this.runRoot) files.push(`${this.runRoot}/${this.driver}-layers/volatile-layers.json`);
    for (const f of files) {
      const bytes = await readOptional(f);
      if (bytes) { for (const l of parseLayersJson(bytes, f)) map.set(l.id, l); }
    }
    return this.#layers = map;
  }

  /** All images of `images.json`. */
  async images(): Promise<StorageImage[]> {
    this.#requireLock("reading images");
    if (this.#images) return this.#images;
    const f = `${this.imagesDir}/images.json`;
    const bytes = await readOptional(f);
    return this.#images = bytes ? parseImagesJson(bytes, f) : [];
  }

  /**
   * Finds an image by full id (optionally `sha256:`-prefixed), unique id prefix, name (exact,
   * normalised like `docker pull`, then by a `/`-boundary suffix, also with `:latest`), manifest
   * digest (`sha256:…`), or `NAME@sha256:…`.
   */
  async findImage(query: string): Promise<StorageImage> {
    const images = await this.images();
    const found = matchImage(images, query);
    if (!found) throw new Error(`image ${JSON.stringify(query)} not found in containers-storage ${this.root}`);
    return found;
  }

  /** The bytes of big-data item `key` of `image`. */
  async bigData(image: StorageImage, key: string): Promise<Uint8Array> {
    this.#requireLock("reading image data");
    const path = `${this.imagesDir}/${image.id}/${bigDataFileName(key)}`;
    const b = await readOptional(path);
    if (b === null) throw new Error(`image ${image.id} has no ${JSON.stringify(key)} item (${path} is missing)`);
    return b;
  }

  /** The image's config bytes as stored (big-data `sha256:<id>`). */
  imageConfig(image: StorageImage): Promise<Uint8Array> {
    return this.bigData(image, configKey(image));
  }

  /** The image's manifest bytes as stored (big-data `manifest`). */
  imageManifest(image: StorageImage): Promise<Uint8Array> {
    return this.bigData(image, "manifest");
  }

  /** The image's layers, base first (parent chain from the top layer, at most 500 deep). */
  async imageLayers(image: StorageImage): Promise<StorageLayer[]> {
    return layerChain(await this.layers(), image.topLayer, MAX_LAYER_DEPTH);
  }

  /** The directory holding the layer's files: `overlay/<id>/diff` or `vfs/dir/<id>`. */
  layerDir(layerId: string): string {
    return this.driver === "overlay" ? `${this.root}/overlay/${layerId}/diff` : `${this.root}/vfs/dir/${layerId}`;
  }

  /** `<driver>-layers/<id>.tar-split.gz`. */
  tarSplitPath(layerId: string): string {
    return `${this.layersDir}/${layerId}.tar-split.gz`;
  }

  /** The layer's tar-split entries (streamed). */
  tarSplit(layerId: string): AsyncGenerator<TarSplitEntry> {
    this.#requireLock("reading a layer");
    const p = this.tarSplitPath(layerId);
    if (lstat(p) === null) throw new Error(`layer ${layerId} has no tar-split data (${p} is missing)`);
    return readTarSplit(p);
  }

  /** Layer ids to search for the content of `layerId`'s entries: itself, then (overlay) its lowers. */
  #searchOrder(layerId: string): string[] {
    const order = [layerId];
    if (this.driver !== "overlay") return order;
    let lower: string;
    try {
      lower = Deno.readTextFileSync(`${this.root}/overlay/${layerId}/lower`).trim();
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return order;
      throw e;
    }
    for (const l of lower.split(":").filter((x) => x)) {
      if (order.length > MAX_LAYER_DEPTH) throw new Error(`layer ${layerId} has more than ${MAX_LAYER_DEPTH} lowers`);
      // `l/<short>` → `../<id>/diff`
      const target = Deno.readLinkSync(`${this.root}/overlay/${l}`);
      const m = /^\.\.\/([0-9a-f]{64})\/diff$/.exec(target);
      if (!m) throw new Error(`layer ${layerId}: lower ${l} points at ${target}, not a layer's diff`);
      order.push(m[1]);
    }
    return order;
  }

  #realDir(dir: string): string {
    let r = this.#realDirs.get(dir);
    if (r === undefined) {
      try {
        r = Deno.realPathSync(dir);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
        r = "";
      }
      this.#realDirs.set(dir, r);
    }
    return r;
  }

  /**
   * The file holding entry `name`'s content in layer `layerId`: in the layer's own directory
   * unless missing or an overlay metacopy stub, else in its lower layers. No path component may
   * be a symlink; the file must be a regular file.
   */
  resolveContent(layerId: string, name: string): ContentFile {
    const rel = entryRelPath(name);
    const slash = rel.lastIndexOf("/");
    for (const id of this.#searchOrder(layerId)) {
      const base = this.layerDir(id);
      const path = `${base}/${rel}`;
      let st: Deno.FileInfo;
      try {
        st = Deno.lstatSync(path);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) continue;
        throw e;
      }
      const realBase = this.#realDir(base);
      const parent = slash < 0 ? realBase : this.#realDir(`${base}/${rel.slice(0, slash)}`);
      if (parent !== (slash < 0 ? realBase : `${realBase}/${rel.slice(0, slash)}`)) {
        throw new Error(`layer ${id}: the path of ${JSON.stringify(name)} goes through a symlink`);
      }
      if (!st.isFile) throw new Error(`layer ${id}: ${JSON.stringify(name)} is not a regular file on disk`);
      if (this.driver === "overlay" && llistxattr(path).some((x) => METACOPY_XATTRS.includes(x))) continue;
      return { path, layerId: id };
    }
    throw new Error(`layer ${layerId}: the content of ${JSON.stringify(name)} is not in the layer's directory`);
  }

  /** The layer's tar entries with content resolved (see `layerItems`). Hold {@link lock} while reading. */
  layerItems(layerId: string): AsyncGenerator<LayerItem> {
    return layerItems(this.tarSplit(layerId), (name) => Promise.resolve(this.resolveContent(layerId, name)));
  }

  /** The layer's exact tar stream. Hold {@link lock} while reading. */
  layerTar(layerId: string, verifyCrc = true): AsyncGenerator<Uint8Array> {
    return layerTar(this.layerItems(layerId), verifyCrc);
  }

  /**
   * The image's layers matched with its config's `rootfs.diff_ids` (same count, same digests in
   * order), base first.
   */
  async checkedLayers(image: StorageImage, diffIds: readonly Digest[]): Promise<StorageLayer[]> {
    const chain = await this.imageLayers(image);
    if (chain.length !== diffIds.length) {
      throw new Error(
        `image ${image.id}: storage has ${chain.length} layers but the config lists ${diffIds.length} diff_ids`,
      );
    }
    chain.forEach((l, i) => {
      if (l.diffDigest !== diffIds[i]) {
        throw new Error(
          `image ${image.id}: layer ${i} (${l.id}) has diff digest ${l.diffDigest ?? "unknown"}, config says ${
            diffIds[i]
          }`,
        );
      }
    });
    return chain;
  }
}

function normalizedName(query: string): string | null {
  try {
    return formatDockerReference(parseDockerReference(query, "latest"));
  } catch {
    return null;
  }
}

/** Image lookup rules of {@link ContainersStorage.findImage}, on a parsed `images.json`. */
export function matchImage(images: readonly StorageImage[], query: string): StorageImage | null {
  const one = (found: StorageImage[], how: string): StorageImage | null => {
    const uniq = [...new Set(found)];
    if (uniq.length > 1) {
      throw new Error(`${JSON.stringify(query)} matches several images by ${how}: ${uniq.map((i) => i.id).join(", ")}`);
    }
    return uniq[0] ?? null;
  };
  const bareId = query.startsWith("sha256:") ? query.slice(7) : query;
  if (/^[0-9a-f]{64}$/.test(bareId)) {
    const byId = images.find((i) => i.id === bareId);
    if (byId) return byId;
    if (query.startsWith("sha256:")) return one(images.filter((i) => i.digests.includes(query as Digest)), "digest");
  }
  const at = query.lastIndexOf("@");
  if (at > 0) {
    const digest = parseDigest(query.slice(at + 1));
    const withDigest = images.filter((i) => i.digests.includes(digest));
    return one(withDigest.filter((i) => nameMatches(i, query.slice(0, at), true)), "name and digest");
  }
  const exact = one(images.filter((i) => i.names.includes(query)), "name");
  if (exact) return exact;
  const norm = normalizedName(query);
  if (norm) {
    const n = one(images.filter((i) => i.names.includes(norm)), "name");
    if (n) return n;
  }
  const bySuffix = one(images.filter((i) => nameMatches(i, query, false)), "name");
  if (bySuffix) return bySuffix;
  if (/^[0-9a-f]{3,63}$/.test(query)) return one(images.filter((i) => i.id.startsWith(query)), "id prefix");
  return null;
}

/** True if an image name ends with `query` (or `query:latest`) at a `/` boundary; `repoOnly` ignores tags. */
function nameMatches(image: StorageImage, query: string, repoOnly: boolean): boolean {
  const lastSlash = query.lastIndexOf("/");
  const hasTag = query.lastIndexOf(":") > lastSlash;
  const candidates = repoOnly ? [query] : hasTag ? [query] : [query, `${query}:latest`];
  return image.names.some((n) => {
    const name = repoOnly ? stripTag(n) : n;
    return candidates.some((c) => name === c || name.endsWith(`/${c}`));
  });
}

function stripTag(name: string): string {
  const at = name.indexOf("@");
  const base = at >= 0 ? name.slice(0, at) : name;
  const colon = base.lastIndexOf(":");
  return colon > base.lastIndexOf("/") ? base.slice(0, colon) : base;
}
