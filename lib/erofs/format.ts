/**
 * On-disk constants and small encoders of the composefs EROFS image (composefs-formats.md §4.2).
 *
 * @module
 */
import type { HashAlg } from "../fsverity/digest.ts";
import type { ByteString } from "../tree/tree.ts";

export const BLOCK_SIZE = 4096;
export const COMPOSEFS_MAGIC = 0xd078629a;
export const EROFS_MAGIC = 0xe0f5e1e2;
export const SUPERBLOCK_OFFSET = 1024;
/** First byte after the superblock: where inodes start. */
export const INODES_START = 1152;
export const FEATURE_COMPAT_SB_CHKSUM = 1;
export const FEATURE_COMPAT_MTIME = 2;
export const FEATURE_COMPAT_XATTR_FILTER = 4;
export const FEATURE_INCOMPAT_CHUNKED_FILE = 4;
export const HEADER_FLAG_HAS_ACL = 1;

export const LAYOUT_FLAT_PLAIN = 0;
export const LAYOUT_FLAT_INLINE = 2;
export const LAYOUT_CHUNK_BASED = 4;

/** Directory entry file types. */
export const FT = { reg: 1, dir: 2, chr: 3, blk: 4, fifo: 5, sock: 6, symlink: 7 } as const;

/** The composefs format versions: 0 and 1 are C mkcomposefs's, 2 is composefs-rs's legacy one. */
export type FormatVersion = 0 | 1 | 2;

export const XATTR_FILTER_SEED = 0x25bbe08f;

export const OVERLAY_PREFIX = "trusted.overlay.";
export const OVERLAY_ESCAPED_PREFIX = "trusted.overlay.overlay.";
export const XATTR_METACOPY = "trusted.overlay.metacopy";
export const XATTR_REDIRECT = "trusted.overlay.redirect";
export const XATTR_OPAQUE = "trusted.overlay.opaque";
export const XATTR_ESCAPED_WHITEOUT = "trusted.overlay.overlay.whiteout";
export const XATTR_ESCAPED_WHITEOUTS = "trusted.overlay.overlay.whiteouts";
export const XATTR_ESCAPED_OPAQUE = "trusted.overlay.overlay.opaque";
export const XATTR_USER_WHITEOUT = "user.overlay.whiteout";
export const XATTR_USER_WHITEOUTS = "user.overlay.whiteouts";
export const XATTR_USER_OPAQUE = "user.overlay.opaque";

const PREFIXES: ReadonlyArray<[string, number]> = [
  ["user.", 1],
  ["system.posix_acl_access", 2],
  ["system.posix_acl_default", 3],
  ["trusted.", 4],
  ["security.", 6],
];
const PREFIXES_V2: ReadonlyArray<[string, number]> = [...PREFIXES, ["lustre.", 5]];
const PREFIX_BY_INDEX: Record<number, string> = { 0: "", 5: "lustre." };
for (const [p, i] of PREFIXES) PREFIX_BY_INDEX[i] = p;

/** The xattr name prefix index and suffix; `lustre.` has its own index only in V2. */
export function splitXattrName(name: ByteString, version: FormatVersion): [number, ByteString] {
  for (const [p, i] of version === 2 ? PREFIXES_V2 : PREFIXES) {
    if (name.startsWith(p)) return [i, name.slice(p.length)];
  }
  return [0, name];
}

/** The full name of an xattr entry; throws on an unknown prefix index. */
export function joinXattrName(index: number, suffix: ByteString): ByteString {
  const p = PREFIX_BY_INDEX[index];
  if (p === undefined) throw new Error(`unknown xattr name index ${index}`);
  return p + suffix;
}

const P1 = 2654435761, P2 = 2246822519, P3 = 3266489917, P4 = 668265263, P5 = 374761393;
const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));
const round = (acc: number, input: number) => Math.imul(rotl((acc + Math.imul(input, P2)) | 0, 13), P1);

/** XXH32 of a byte string. */
export function xxh32(s: ByteString, seed: number): number {
  const len = s.length;
  const u32 = (i: number) =>
    (s.charCodeAt(i) | (s.charCodeAt(i + 1) << 8) | (s.charCodeAt(i + 2) << 16) | (s.charCodeAt(i + 3) << 24)) | 0;
  let p = 0;
  let h: number;
  if (len >= 16) {
    let v1 = (seed + P1 + P2) | 0, v2 = (seed + P2) | 0, v3 = seed | 0, v4 = (seed - P1) | 0;
    while (p <= len - 16) {
      v1 = round(v1, u32(p));
      v2 = round(v2, u32(p + 4));
      v3 = round(v3, u32(p + 8));
      v4 = round(v4, u32(p + 12));
      p += 16;
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0;
  } else {
    h = (seed + P5) | 0;
  }
  h = (h + len) | 0;
  for (; p + 4 <= len; p += 4) h = Math.imul(rotl((h + Math.imul(u32(p), P3)) | 0, 17), P4);
  for (; p < len; p++) h = Math.imul(rotl((h + Math.imul(s.charCodeAt(p), P5)) | 0, 11), P1);
  h ^= h >>> 15;
  h = Math.imul(h, P2);
  h ^= h >>> 13;
  h = Math.imul(h, P3);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The `trusted.overlay.metacopy` value carrying an fs-verity digest. */
export function metacopyValue(alg: HashAlg, digest: Uint8Array): Uint8Array {
  const v = new Uint8Array(4 + digest.length);
  v[1] = 4 + digest.length;
  v[3] = alg === "sha256" ? 1 : 2;
  v.set(digest, 4);
  return v;
}

/** The digest inside a metacopy value, or null if the value is empty or malformed. */
export function parseMetacopy(v: Uint8Array): { alg: HashAlg; digest: Uint8Array } | null {
  if (v.length < 4 || v[0] !== 0 || v[1] !== v.length || v[2] !== 0) return null;
  if (v[3] === 1 && v.length === 36) return { alg: "sha256", digest: v.slice(4) };
  if (v[3] === 2 && v.length === 68) return { alg: "sha512", digest: v.slice(4) };
  return null;
}

/** Chunk size bits of an external file: ceil(log2 size), at least 12, at most 43. */
export function chunkBits(size: number): number {
  let bits = 12;
  while (bits < 43 && 2 ** bits < size) bits++;
  return bits;
}

export function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}
