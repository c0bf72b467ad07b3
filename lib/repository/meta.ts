/**
 * `meta.json` (composefs-formats.md §1.2): parse, check and serialize exactly as composefs-rs's
 * serde_json pretty printer does. Pure; no I/O.
 *
 * @module
 */
import type { HashAlg } from "../fsverity/digest.ts";

/** EROFS format numbers of composefs images. */
export type ErofsFormat = 0 | 1 | 2;

/** Which EROFS formats `commit_images` writes: `default` first, then `extra` ascending. */
export interface ErofsFormats {
  default: ErofsFormat;
  extra: ErofsFormat[];
}

/** The parsed content of `meta.json`. */
export interface RepoMeta {
  version: number;
  alg: HashAlg;
  compatible: string[];
  readOnlyCompatible: string[];
  incompatible: string[];
  /** As written (absent → `{default: 2}`); see {@link effectiveFormats}. */
  erofsFormats: ErofsFormats;
}

/** The highest base format version we understand. */
export const META_VERSION = 1;
/** Feature flags we understand, by class. */
export const KNOWN_FEATURES = { compatible: [], readOnlyCompatible: ["v1_erofs"], incompatible: [] } as const;

/** What opening a repository with this metadata allows. */
export type Access = { mode: "read-write" } | { mode: "read-only"; reason: string };

/** `fsverity-<hash>-<lg_blocksize>` → algorithm; throws on anything but sha256/sha512 with 4 KiB blocks. */
export function parseAlgorithm(s: string): HashAlg {
  if (!s.startsWith("fsverity-")) throw new Error(`unknown algorithm ${JSON.stringify(s)}: missing "fsverity-" prefix`);
  const rest = s.slice("fsverity-".length);
  const dash = rest.lastIndexOf("-");
  if (dash < 0) throw new Error(`unknown algorithm ${JSON.stringify(s)}: missing block size`);
  const hash = rest.slice(0, dash), lg = rest.slice(dash + 1);
  if (hash !== "sha256" && hash !== "sha512") throw new Error(`unknown algorithm ${JSON.stringify(s)}: hash ${hash}`);
  if (!/^[0-9]+$/.test(lg) || Number(lg) > 255) {
    throw new Error(`unknown algorithm ${JSON.stringify(s)}: block size is not a number`);
  }
  if (Number(lg) !== 12) throw new Error(`unsupported algorithm ${JSON.stringify(s)}: only 4096-byte blocks (12)`);
  return hash;
}

/** `fsverity-sha512-12` for sha512. */
export function algorithmName(alg: HashAlg): string {
  return `fsverity-${alg}-12`;
}

function stringList(v: unknown, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw new Error(`${what} must be a list of strings`);
  return v as string[];
}

function format(v: unknown, what: string): ErofsFormat {
  if (v !== 0 && v !== 1 && v !== 2) throw new Error(`${what} must be 0, 1 or 2, not ${JSON.stringify(v)}`);
  return v;
}

/** Parses `meta.json` text; unknown top-level fields are ignored, as composefs-rs does. */
export function parseMeta(text: string): RepoMeta {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new Error(`meta.json is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof j !== "object" || j === null || Array.isArray(j)) throw new Error("meta.json is not a JSON object");
  if (!Number.isInteger(j.version) || (j.version as number) < 0) {
    throw new Error("meta.json: version must be an integer");
  }
  if (typeof j.algorithm !== "string") throw new Error("meta.json: algorithm missing");
  const f = (j.features ?? {}) as Record<string, unknown>;
  const ef = j.erofs_formats as Record<string, unknown> | undefined;
  const erofsFormats: ErofsFormats = ef === undefined ? { default: 2, extra: [] } : {
    default: format(ef.default, "erofs_formats.default"),
    extra: [...new Set((ef.extra as unknown[] ?? []).map((x) => format(x, "erofs_formats.extra")))].sort(),
  };
  return {
    version: j.version as number,
    alg: parseAlgorithm(j.algorithm),
    compatible: stringList(f.compatible, "features.compatible"),
    readOnlyCompatible: stringList(f["read-only-compatible"], "features.read-only-compatible"),
    incompatible: stringList(f.incompatible, "features.incompatible"),
    erofsFormats,
  };
}

/** The metadata `init` writes: `v1_erofs` iff the default format is 1. */
export function newMeta(alg: HashAlg, formats: ErofsFormats): RepoMeta {
  const extra = [...new Set(formats.extra)].filter((x) => x !== formats.default).sort();
  return {
    version: META_VERSION,
    alg,
    compatible: [],
    readOnlyCompatible: formats.default === 1 ? ["v1_erofs"] : [],
    incompatible: [],
    erofsFormats: { default: formats.default, extra },
  };
}

function list(items: readonly (string | number)[], indent: string): string {
  if (items.length === 0) return "[]";
  return `[\n${items.map((x) => `${indent}  ${JSON.stringify(x)}`).join(",\n")}\n${indent}]`;
}

/** serde_json pretty output (2-space indent, fixed field order) plus a final newline. */
export function serializeMeta(m: RepoMeta): string {
  const ef = m.erofsFormats.extra.length
    ? `{\n    "default": ${m.erofsFormats.default},\n    "extra": ${list(m.erofsFormats.extra, "    ")}\n  }`
    : `{\n    "default": ${m.erofsFormats.default}\n  }`;
  return `{
  "version": ${m.version},
  "algorithm": ${JSON.stringify(algorithmName(m.alg))},
  "features": {
    "compatible": ${list(m.compatible, "    ")},
    "read-only-compatible": ${list(m.readOnlyCompatible, "    ")},
    "incompatible": ${list(m.incompatible, "    ")}
  },
  "erofs_formats": ${ef}
}
`;
}

/**
 * What we may do with a repository: refuses a newer version or unknown incompatible features,
 * allows only reading with unknown read-only-compatible features.
 */
export function checkAccess(m: RepoMeta): Access {
  if (m.version > META_VERSION) {
    throw new Error(`repository format version ${m.version} is newer than this bootcfs understands (${META_VERSION})`);
  }
  const unknownIncompat = m.incompatible.filter((x) => !(KNOWN_FEATURES.incompatible as readonly string[]).includes(x));
  if (unknownIncompat.length) {
    throw new Error(`repository uses incompatible features this bootcfs does not know: ${unknownIncompat.join(", ")}`);
  }
  const unknownRo = m.readOnlyCompatible.filter((x) =>
    !(KNOWN_FEATURES.readOnlyCompatible as readonly string[]).includes(x)
  );
  if (unknownRo.length) {
    return { mode: "read-only", reason: `it uses features this bootcfs can only read: ${unknownRo.join(", ")}` };
  }
  return { mode: "read-write" };
}

/** The EROFS formats a repository commits images in (the §1.2 "effective format config" quirk included). */
export function effectiveFormats(m: RepoMeta): ErofsFormats {
  const f = m.erofsFormats;
  if (!(f.default === 2 && f.extra.length === 0)) return f;
  return m.readOnlyCompatible.includes("v1_erofs") ? { default: 1, extra: [] } : { default: 2, extra: [] };
}

/** True if two metadata records describe the same configuration (for idempotent init). */
export function sameMeta(a: RepoMeta, b: RepoMeta): boolean {
  return serializeMeta(a) === serializeMeta(b);
}
