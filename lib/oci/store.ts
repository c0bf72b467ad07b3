/**
 * The OCI image store inside a composefs repository (oci-and-boot.md §2, §5): config and manifest
 * splitstreams with their named refs, tags (`streams/refs/oci/<encoded name>`), opening an image
 * by tag or manifest digest, listing and inspecting.
 *
 * @module
 */
import { type Digest, digestAlgorithm, digestOf, parseDigest } from "./digest.ts";
import { decodeTag, encodeTag, type ErofsFormat, type ObjectId, type Repository } from "../repository/mod.ts";
import { contentType, SplitStream } from "../splitstream/mod.ts";
import {
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  parseImageConfig,
  parseJson,
  parseManifest,
} from "./manifest.ts";
import { isImageConfigType } from "./mediatype.ts";

/** Splitstream content types of the OCI store (§1.4). */
export const CONTENT_TYPE = {
  layer: contentType("ocilayer"),
  config: contentType("ociconfg"),
  manifest: contentType("ocimanif"),
  blob: contentType("oci_blob"),
} as const;

/** Config named-ref key of the V2 (Epoch2) EROFS image. */
export const IMAGE_REF_V2 = "composefs.image";
/** Config named-ref key of the V0/V1 (Epoch1) EROFS image. */
export const IMAGE_REF_V1 = "composefs.image.v1";
/** Prefix of every boot-image key in a config. */
export const BOOT_REF_PREFIX = "composefs.image.boot";

/** `streams/` name of a manifest. */
export const manifestContentId = (d: string): string => `oci-manifest-${d}`;
/** `streams/` name of a config. */
export const configContentId = (d: string): string => `oci-config-${d}`;
/** `streams/` name of a layer (keyed by diff_id, or by blob digest for artifacts). */
export const layerContentId = (d: string): string => `oci-layer-${d}`;

/** The config key of an EROFS format's image: V0 and V1 share Epoch1's key. */
export function imageRefKey(format: ErofsFormat): string {
  return format === 2 ? IMAGE_REF_V2 : IMAGE_REF_V1;
}

/** Layer refs in config diff_id order: `[diff_id, layer splitstream verity]`. */
export type LayerRefs = [Digest, ObjectId][];

/** The EROFS image refs a config carries. */
export interface ImageRefs {
  v2?: ObjectId;
  v1?: ObjectId;
  /** Boot image keys (`composefs.image.boot…`) → image object, kept in insertion order. */
  boot?: Map<string, ObjectId>;
}

/**
 * Writes a config splitstream (`write_config_raw`, §5.1/§5.4): layer refs in diff_id order, then
 * `composefs.image`, `composefs.image.v1`, then boot refs; one external chunk = the exact config
 * bytes. (Re-)points `streams/oci-config-<digest>` and returns the new stream's object.
 */
export function writeConfigStream(
  repo: Repository,
  configBytes: Uint8Array,
  layers: LayerRefs,
  images: ImageRefs = {},
): ObjectId {
  const w = repo.createStreamWriter(CONTENT_TYPE.config);
  try {
    for (const [diffId, id] of layers) w.addNamedStreamRef(diffId, id);
    if (images.v2) w.addNamedStreamRef(IMAGE_REF_V2, images.v2);
    if (images.v1) w.addNamedStreamRef(IMAGE_REF_V1, images.v1);
    for (const [k, id] of images.boot ?? []) w.addNamedStreamRef(k, id);
    repo.writeExternal(w, configBytes);
  } catch (e) {
    w.abort();
    throw e;
  }
  return repo.writeStream(w, configContentId(digestOf(configBytes)));
}

/**
 * Writes a manifest splitstream (§5.2): `config:<digest>` first, then the layer refs in config
 * order (also on rewrites, so the verity is deterministic); one external chunk = the raw manifest.
 * (Re-)points `streams/oci-manifest-<digest>` and, with `tag`, the tag. Returns the stream object.
 */
export function writeManifestStream(
  repo: Repository,
  manifestBytes: Uint8Array,
  manifestDigest: Digest,
  configDigest: Digest,
  configVerity: ObjectId,
  layers: LayerRefs,
  tag?: string,
): ObjectId {
  const w = repo.createStreamWriter(CONTENT_TYPE.manifest);
  try {
    w.addNamedStreamRef(`config:${configDigest}`, configVerity);
    for (const [diffId, id] of layers) w.addNamedStreamRef(diffId, id);
    repo.writeExternal(w, manifestBytes);
  } catch (e) {
    w.abort();
    throw e;
  }
  return repo.writeStream(w, manifestContentId(manifestDigest), tag === undefined ? undefined : tagRef(tag));
}

/** `streams/refs/` name of a tag: `oci/<encode(tag)>` (rejects names starting with `@`). */
export function tagRef(tag: string): string {
  return `oci/${encodeTag(tag)}`;
}

/** Points tag `name` at manifest `digest` (the manifest need not exist yet, as upstream). */
export function tagImage(repo: Repository, digest: Digest, name: string): void {
  repo.nameStream(manifestContentId(digest), tagRef(name));
}

/** Removes tag `name`; an error when there is no such tag. Data stays until GC. */
export function untagImage(repo: Repository, name: string): void {
  if (!repo.removeRef("streams", tagRef(name))) throw new Error(`no image tagged ${JSON.stringify(name)}`);
}

/** Every tag and the manifest digest it names (refs that are not `oci-manifest-<digest>` are skipped). */
export function listTags(repo: Repository): { name: string; digest: Digest }[] {
  const out: { name: string; digest: Digest }[] = [];
  for (const { name, target } of repo.listRefs("streams", "oci")) {
    const last = target.slice(target.lastIndexOf("/") + 1);
    if (!last.startsWith("oci-manifest-")) continue;
    let digest: Digest;
    try {
      digest = parseDigest(last.slice("oci-manifest-".length));
    } catch {
      continue;
    }
    out.push({ name: decodeTag(name.slice("oci/".length)), digest });
  }
  return out;
}

/** The one external object of a config/manifest splitstream, read whole. */
function singleObject(repo: Repository, s: SplitStream, what: string): Uint8Array {
  if (s.objectRefs.length !== 1) throw new Error(`${what} splitstream has ${s.objectRefs.length} objects, expected 1`);
  return repo.readObject(s.objectRefs[0]);
}

/** An image in the repository (`OciImage`, §5.5). */
export class OciImage {
  readonly manifestDigest: Digest;
  readonly manifestVerity: ObjectId;
  readonly manifestBytes: Uint8Array;
  readonly manifest: ImageManifest;
  readonly configDigest: Digest;
  readonly configVerity: ObjectId;
  readonly configBytes: Uint8Array;
  /** The parsed config; null for artifacts. */
  readonly config: ImageConfig | null;
  /** Layer refs in config diff_id order (artifacts: manifest layer order). */
  readonly layerRefs: LayerRefs;
  readonly images: ImageRefs & { boot: Map<string, ObjectId> };

  private constructor(init: Omit<OciImage, "isContainer" | "imageRef">) {
    this.manifestDigest = init.manifestDigest;
    this.manifestVerity = init.manifestVerity;
    this.manifestBytes = init.manifestBytes;
    this.manifest = init.manifest;
    this.configDigest = init.configDigest;
    this.configVerity = init.configVerity;
    this.configBytes = init.configBytes;
    this.config = init.config;
    this.layerRefs = init.layerRefs;
    this.images = init.images;
  }

  /** True for container images (an image config); false for artifacts. */
  get isContainer(): boolean {
    return this.config !== null;
  }

  /** The EROFS image of `format` named in the config (no fallback between epochs), or undefined. */
  imageRef(format: ErofsFormat): ObjectId | undefined {
    return format === 2 ? this.images.v2 : this.images.v1;
  }

  /**
   * Opens manifest `digest`: by `verity` when given, else through `streams/oci-manifest-<digest>`
   * with the manifest's sha256 checked. The config is read by the verity the manifest names.
   */
  static open(repo: Repository, digest: Digest, verity?: ObjectId): OciImage {
    const cid = manifestContentId(digest);
    const mverity = verity ?? repo.hasStream(cid);
    if (!mverity) throw new Error(`image ${digest} is not in the repository`);
    const ms = SplitStream.parse(repo.readObject(mverity), repo.alg);
    if (ms.contentType !== CONTENT_TYPE.manifest) throw new Error(`manifest ${digest}: not a manifest splitstream`);
    const manifestBytes = singleObject(repo, ms, `manifest ${digest}`);
    if (verity === undefined && digestOf(manifestBytes, digestAlgorithm(digest)) !== digest) {
      throw new Error(`manifest ${digest}: stored bytes do not match the digest`);
    }
    const manifest = expectManifest(parseManifest(manifestBytes), digest);
    const configDigest = manifest.config.digest;
    const configVerity = ms.namedRefs.get(`config:${configDigest}`);
    if (!configVerity) throw new Error(`manifest ${digest} has no ref to its config ${configDigest}`);
    // By the verity the manifest names: `streams/oci-config-…` may already point at a newer rewrite.
    const cs = SplitStream.parse(repo.readObject(configVerity), repo.alg);
    return OciImage.#build(repo, digest, mverity, manifestBytes, manifest, ms, configVerity, cs);
  }

  static #build(
    repo: Repository,
    digest: Digest,
    mverity: ObjectId,
    manifestBytes: Uint8Array,
    manifest: ImageManifest,
    ms: SplitStream,
    configVerity: ObjectId,
    cs: SplitStream,
  ): OciImage {
    const configDigest = manifest.config.digest;
    if (cs.contentType !== CONTENT_TYPE.config) throw new Error(`config ${configDigest}: not a config splitstream`);
    const configBytes = singleObject(repo, cs, `config ${configDigest}`);
    const container = isImageConfigType(manifest.config.mediaType);
    const config = container ? parseImageConfig(configBytes) : null;
    const images: ImageRefs & { boot: Map<string, ObjectId> } = { boot: new Map() };
    const refs = new Map<string, ObjectId>();
    for (const [k, id] of cs.namedRefs) {
      if (k === IMAGE_REF_V2) images.v2 = id;
      else if (k === IMAGE_REF_V1) images.v1 = id;
      else if (k.startsWith(BOOT_REF_PREFIX)) images.boot.set(k, id);
      else refs.set(k, id);
    }
    let layerRefs: LayerRefs;
    if (config) {
      layerRefs = config.diffIds.map((d) => {
        const id = refs.get(d);
        if (!id) throw new Error(`config ${configDigest} has no layer ref for ${d}`);
        return [d, id];
      });
    } else {
      layerRefs = manifest.layers.map((l) => {
        const id = ms.namedRefs.get(l.digest);
        if (!id) throw new Error(`manifest ${digest} has no ref for layer ${l.digest}`);
        return [l.digest, id];
      });
    }
    return new OciImage({
      manifestDigest: digest,
      manifestVerity: mverity,
      manifestBytes,
      manifest,
      configDigest,
      configVerity,
      configBytes,
      config,
      layerRefs,
      images,
    });
  }

  /** Opens the image tagged `name` (`open_ref`): the tag's manifest, by its current verity. */
  static openTag(repo: Repository, name: string): OciImage {
    const entry = repo.refTarget("streams", tagRef(name));
    if (entry === null) throw new Error(`no image tagged ${JSON.stringify(name)}`);
    if (!entry.startsWith("oci-manifest-")) throw new Error(`tag ${JSON.stringify(name)} does not name a manifest`);
    const digest = parseDigest(entry.slice("oci-manifest-".length));
    const verity = repo.hasStream(entry);
    if (!verity) throw new Error(`tag ${JSON.stringify(name)}: manifest ${digest} is missing`);
    return OciImage.open(repo, digest, verity);
  }

  /**
   * Opens `NAME` (a tag) or `@sha256:…` (a manifest digest, checked against the stored bytes).
   * A bare `sha256:<hex>` is a digest too, since tags cannot contain it meaningfully.
   */
  static resolve(repo: Repository, spec: string): OciImage {
    if (spec.startsWith("@")) return OciImage.open(repo, parseDigest(spec.slice(1)));
    if (/^sha(256|512):[0-9a-f]+$/.test(spec) && repo.refTarget("streams", tagRef(spec)) === null) {
      return OciImage.open(repo, parseDigest(spec));
    }
    return OciImage.openTag(repo, spec);
  }
}

function expectManifest(m: ImageManifest | ImageIndex, digest: string): ImageManifest {
  if (m.kind !== "manifest") throw new Error(`${digest} is an image index, not an image manifest`);
  return m;
}

/** One line of `oci images` (§5.6 `list_images`). */
export interface ImageSummary {
  name: string;
  manifestDigest: Digest;
  isContainer: boolean;
  architecture?: string;
  os?: string;
  created?: string;
  layerCount: number;
  /** The default-format EROFS image id, when generated. */
  imageId?: ObjectId;
}

/** Every tagged image; images that fail to open are reported through `onError` and skipped. */
export function listImages(
  repo: Repository,
  defaultFormat: ErofsFormat,
  onError: (name: string, e: unknown) => void = () => {},
): ImageSummary[] {
  const out: ImageSummary[] = [];
  for (const t of listTags(repo)) {
    try {
      const img = OciImage.open(repo, t.digest);
      out.push({
        name: t.name,
        manifestDigest: t.digest,
        isContainer: img.isContainer,
        architecture: img.config?.architecture,
        os: img.config?.os,
        created: img.config?.created,
        layerCount: img.manifest.layers.length,
        imageId: img.imageRef(defaultFormat),
      });
    } catch (e) {
      onError(t.name, e);
    }
  }
  return out;
}

/** `inspect` JSON (§5.6): manifest and config as parsed JSON, plus the default-format EROFS ids. */
export function inspectImage(img: OciImage, defaultFormat: ErofsFormat): Record<string, unknown> {
  return {
    manifestDigest: img.manifestDigest,
    manifestVerity: img.manifestVerity,
    configDigest: img.configDigest,
    configVerity: img.configVerity,
    manifest: parseJson(img.manifestBytes, "manifest"),
    config: parseJson(img.configBytes, "config"),
    layers: img.layerRefs.map(([diffId, verity]) => ({ diffId, verity })),
    ...(img.imageRef(defaultFormat) ? { composefs_erofs: img.imageRef(defaultFormat) } : {}),
    ...(img.images.boot.size ? { composefs_boot_erofs: Object.fromEntries(img.images.boot) } : {}),
  };
}
