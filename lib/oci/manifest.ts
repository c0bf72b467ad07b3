/**
 * Parsing and validation of OCI / Docker v2s2 manifests, image indexes (manifest lists) and image
 * configs, plus platform selection. Pure: bytes in, typed values out; the raw bytes are never
 * re-serialised (their digest must stay valid).
 *
 * @module
 */
import { type Digest, parseDigest } from "./digest.ts";
import { isIndexType, isManifestType, MediaType } from "./mediatype.ts";

/** An OS/architecture pair, with the optional CPU variant. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** A content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
  artifactType?: string;
  urls?: string[];
}

/** An image manifest (OCI or Docker v2 schema 2). */
export interface ImageManifest {
  kind: "manifest";
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  artifactType?: string;
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** An image index (OCI) or manifest list (Docker). */
export interface ImageIndex {
  kind: "index";
  mediaType: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** The parts of an image config bootcfs uses; the raw JSON is kept in `raw`. */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  created?: string;
  /** Layer digests of the uncompressed tars, in layer order. */
  diffIds: Digest[];
  /** `config.Labels`, when present. */
  labels: Record<string, string>;
  raw: Record<string, unknown>;
}

const td = new TextDecoder();
type Json = Record<string, unknown>;

/** JSON from bytes; the error names `what`. */
export function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(td.decode(bytes));
  } catch (e) {
    throw new Error(`${what} is not valid JSON: ${(e as Error).message}`);
  }
}

function parseJsonObject(bytes: Uint8Array, what: string): Json {
  const v = parseJson(bytes, what);
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`${what} is not a JSON object`);
  return v as Json;
}

function stringMap(v: unknown, what: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "object" || Array.isArray(v) || Object.values(v).some((x) => typeof x !== "string")) {
    throw new Error(`${what} must be an object of strings`);
  }
  return v as Record<string, string>;
}

function parsePlatformJson(v: unknown, what: string): Platform | undefined {
  if (v === undefined || v === null) return undefined;
  const p = v as Json;
  if (typeof p !== "object" || typeof p.os !== "string" || typeof p.architecture !== "string") {
    throw new Error(`${what}: platform needs string "os" and "architecture"`);
  }
  const out: Platform = { os: p.os, architecture: p.architecture };
  if (typeof p.variant === "string" && p.variant) out.variant = p.variant;
  return out;
}

/** Validates one descriptor object. */
export function parseDescriptor(v: unknown, what: string): Descriptor {
  const d = v as Json;
  if (typeof d !== "object" || d === null) throw new Error(`${what}: not a descriptor object`);
  if (typeof d.mediaType !== "string" || !d.mediaType) throw new Error(`${what}: missing mediaType`);
  if (typeof d.digest !== "string") throw new Error(`${what}: missing digest`);
  if (typeof d.size !== "number" || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new Error(`${what}: size must be a non-negative integer`);
  }
  const out: Descriptor = { mediaType: d.mediaType, digest: parseDigest(d.digest), size: d.size };
  const platform = parsePlatformJson(d.platform, what);
  if (platform) out.platform = platform;
  const annotations = stringMap(d.annotations, `${what}: annotations`);
  if (annotations) out.annotations = annotations;
  if (typeof d.artifactType === "string") out.artifactType = d.artifactType;
  if (Array.isArray(d.urls)) out.urls = d.urls.map(String);
  return out;
}

/**
 * Parses manifest bytes into a manifest or an index. The media type comes from the JSON
 * `mediaType` field, else from `hint` (a descriptor's or HTTP response's type), else from the
 * shape; a field that contradicts the hint is an error. Schema 1 manifests are rejected.
 *
 * @example
 * ```ts
 * const m = parseManifest(bytes, MediaType.ociManifest);
 * if (m.kind === "index") … else m.layers …
 * ```
 */
export function parseManifest(bytes: Uint8Array, hint?: string): ImageManifest | ImageIndex {
  const j = parseJsonObject(bytes, "manifest");
  const field = typeof j.mediaType === "string" ? j.mediaType : undefined;
  if (j.schemaVersion === 1 || hint === MediaType.dockerSchema1 || hint === MediaType.dockerSchema1Signed) {
    throw new Error("Docker schema 1 manifests are not supported");
  }
  if (field && hint && field !== hint) {
    throw new Error(`manifest media type ${JSON.stringify(field)} does not match the expected ${JSON.stringify(hint)}`);
  }
  let mediaType = field ?? hint;
  if (!mediaType) {
    if (Array.isArray(j.manifests)) mediaType = MediaType.ociIndex;
    else if (j.config !== undefined && Array.isArray(j.layers)) mediaType = MediaType.ociManifest;
    else throw new Error("cannot tell the manifest media type: no mediaType field and no manifests/layers");
  }
  if (j.schemaVersion !== 2) throw new Error(`unsupported manifest schemaVersion ${JSON.stringify(j.schemaVersion)}`);
  const annotations = stringMap(j.annotations, "manifest annotations");
  if (isIndexType(mediaType)) {
    if (!Array.isArray(j.manifests)) throw new Error("image index has no manifests array");
    const manifests = j.manifests.map((d, i) => parseDescriptor(d, `index manifests[${i}]`));
    return { kind: "index", mediaType, manifests, ...(annotations ? { annotations } : {}) };
  }
  if (!isManifestType(mediaType)) throw new Error(`unsupported manifest media type ${JSON.stringify(mediaType)}`);
  if (!Array.isArray(j.layers)) throw new Error("manifest has no layers array");
  const m: ImageManifest = {
    kind: "manifest",
    mediaType,
    config: parseDescriptor(j.config, "manifest config"),
    layers: j.layers.map((d, i) => parseDescriptor(d, `manifest layers[${i}]`)),
  };
  if (typeof j.artifactType === "string") m.artifactType = j.artifactType;
  if (j.subject !== undefined) m.subject = parseDescriptor(j.subject, "manifest subject");
  if (annotations) m.annotations = annotations;
  return m;
}

/**
 * Parses an image config (OCI or Docker, including configs written by old Docker versions with
 * `container_config`/`docker_version`). `rootfs.diff_ids` is required: bootcfs keys layers by it.
 */
export function parseImageConfig(bytes: Uint8Array): ImageConfig {
  const j = parseJsonObject(bytes, "image config");
  const rootfs = j.rootfs as Json | undefined;
  if (!rootfs || typeof rootfs !== "object") {
    throw new Error("image config has no rootfs (configs from before Docker 1.10 are not supported)");
  }
  if (rootfs.type !== "layers") {
    throw new Error(`image config rootfs.type is ${JSON.stringify(rootfs.type)}, not "layers"`);
  }
  if (!Array.isArray(rootfs.diff_ids)) throw new Error("image config rootfs.diff_ids is not an array");
  const diffIds = rootfs.diff_ids.map((d, i) => {
    if (typeof d !== "string") throw new Error(`image config diff_ids[${i}] is not a string`);
    return parseDigest(d);
  });
  const str = (v: unknown) => (typeof v === "string" ? v : undefined);
  const cfg = (j.config ?? j.container_config) as Json | undefined;
  const labels = stringMap(cfg && typeof cfg === "object" ? cfg.Labels : undefined, "image config labels") ?? {};
  const out: ImageConfig = { diffIds, labels, raw: j };
  for (const k of ["architecture", "os", "variant", "created"] as const) {
    const v = str(j[k]);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

const ARCH_ALIASES: Record<string, string> = {
  x86_64: "amd64",
  "x86-64": "amd64",
  aarch64: "arm64",
  armhf: "arm",
  armel: "arm",
  i386: "386",
  i686: "386",
};

function normArch(a: string): string {
  return ARCH_ALIASES[a] ?? a;
}

/** The variant an entry without one is assumed to have (arm64 → v8, as containers/image does). */
function normVariant(p: Platform): string {
  const a = normArch(p.architecture);
  if (p.variant) return p.variant;
  return a === "arm64" ? "v8" : "";
}

/** `os/arch[/variant]`. */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`;
}

/** Parses `os/arch[/variant]` (as given to `--platform`); architecture aliases are normalised. */
export function parsePlatform(s: string): Platform {
  const parts = s.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !p || !/^[A-Za-z0-9_.-]+$/.test(p))) {
    throw new Error(`invalid platform ${JSON.stringify(s)}: want os/arch[/variant], e.g. linux/amd64`);
  }
  const out: Platform = { os: parts[0].toLowerCase(), architecture: normArch(parts[1].toLowerCase()) };
  if (parts[2]) out.variant = parts[2].toLowerCase();
  return out;
}

/** The platform of the running host (linux/amd64 on the usual build machine). */
export function hostPlatform(): Platform {
  return { os: Deno.build.os === "linux" ? "linux" : Deno.build.os, architecture: normArch(Deno.build.arch) };
}

/**
 * The manifest descriptor of `index` for platform `want`: same OS and architecture, and the same
 * variant when `want` names one (an entry without a variant counts as the default, e.g. arm64 v8).
 * Without a wanted variant, an entry with the default variant is preferred over others.
 * Throws listing the available platforms when none fits.
 *
 * @example
 * ```ts
 * const d = selectPlatform(index, parsePlatform("linux/arm64"));
 * ```
 */
export function selectPlatform(index: ImageIndex, want: Platform = hostPlatform()): Descriptor {
  const arch = normArch(want.architecture);
  const candidates = index.manifests.filter((d) =>
    d.platform && d.platform.os === want.os && normArch(d.platform.architecture) === arch &&
    (isManifestType(d.mediaType) || isIndexType(d.mediaType))
  );
  const wantVariant = want.variant ? normVariant({ ...want, architecture: arch }) : undefined;
  const match = wantVariant !== undefined
    ? candidates.find((d) => normVariant(d.platform!) === wantVariant)
    : candidates.find((d) => normVariant(d.platform!) === normVariant({ os: want.os, architecture: arch })) ??
      candidates[0];
  if (!match) {
    const avail = index.manifests.filter((d) => d.platform).map((d) => formatPlatform(d.platform!));
    throw new Error(
      `no image for platform ${formatPlatform(want)} in the index (available: ${avail.join(", ") || "none"})`,
    );
  }
  return match;
}
