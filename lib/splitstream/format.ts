/**
 * Splitstream file layout (composefs-formats.md §3.1): constants and the header/info codec.
 * Pure bytes in, bytes out.
 *
 * @module
 */
import { DIGEST_SIZE, type HashAlg } from "../fsverity/digest.ts";

/** `SplitStream` in ASCII. */
export const MAGIC: Uint8Array = new TextEncoder().encode("SplitStream");
/** Header and info sizes as written. */
export const HEADER_SIZE = 32, INFO_SIZE = 80;
/** Regular files larger than this are stored as external objects (§3.6). */
export const INLINE_CONTENT_MAX = 64;

const ALG_CODE: Record<HashAlg, number> = { sha256: 1, sha512: 2 };

/** A `[start, end)` byte range of the file. */
export interface FileRange {
  start: number;
  end: number;
}

/** The info section. */
export interface Info {
  streamRefs: FileRange;
  objectRefs: FileRange;
  stream: FileRange;
  namedRefs: FileRange;
  contentType: bigint;
  streamSize: number;
}

/** A decoded header: where the info section is, and which hash the ref arrays use. */
export interface Header {
  alg: HashAlg;
  info: FileRange;
  /** True when the file used the pre-`repr(C)` field order of bootc ≤ 1.15 (§3.1 legacy layout). */
  legacy: boolean;
}

/** The u64 content type of 8 ASCII bytes (little-endian), e.g. `contentType("ocilayer")`. */
export function contentType(name: string): bigint {
  const b = new TextEncoder().encode(name);
  if (b.length !== 8) throw new Error(`a content type is 8 ASCII bytes: ${JSON.stringify(name)}`);
  return new DataView(b.buffer).getBigUint64(0, true);
}

/** The 8 bytes of a content type as text when printable, else as hex. */
export function contentTypeName(t: bigint): string {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, t, true);
  if (b.every((c) => c >= 0x20 && c < 0x7f)) return new TextDecoder().decode(b);
  return `0x${t.toString(16).padStart(16, "0")}`;
}

function u64(v: DataView, off: number, what: string): number {
  const n = v.getBigUint64(off, true);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`splitstream: ${what} too large (${n})`);
  return Number(n);
}

function isMagic(b: Uint8Array, off: number): boolean {
  for (let i = 0; i < MAGIC.length; i++) if (b[off + i] !== MAGIC[i]) return false;
  return true;
}

/** Encodes the current (`repr(C)`) header. */
export function encodeHeader(alg: HashAlg, info: FileRange): Uint8Array {
  const h = new Uint8Array(HEADER_SIZE);
  const v = new DataView(h.buffer);
  h.set(MAGIC, 0);
  h[14] = ALG_CODE[alg];
  h[15] = 12;
  v.setBigUint64(16, BigInt(info.start), true);
  v.setBigUint64(24, BigInt(info.end), true);
  return h;
}

/** Decodes a header in either layout; throws on a bad magic, version, algorithm or block size. */
export function decodeHeader(file: Uint8Array): Header {
  if (file.length < HEADER_SIZE) throw new Error(`splitstream: file too short for a header (${file.length} bytes)`);
  const v = new DataView(file.buffer, file.byteOffset, HEADER_SIZE);
  let legacy = false, version: number, alg: number, lg: number, infoOff: number;
  if (isMagic(file, 0)) {
    [version, alg, lg, infoOff] = [file[11], file[14], file[15], 16];
  } else if (isMagic(file, 18)) {
    legacy = true;
    [version, alg, lg, infoOff] = [file[29], file[30], file[31], 0];
  } else {
    throw new Error("splitstream: bad magic (not a splitstream)");
  }
  if (version !== 0) throw new Error(`splitstream: unsupported version ${version}`);
  if (lg !== 12) throw new Error(`splitstream: unsupported block size 2^${lg}`);
  const name = (Object.keys(ALG_CODE) as HashAlg[]).find((k) => ALG_CODE[k] === alg);
  if (!name) throw new Error(`splitstream: unknown hash algorithm ${alg}`);
  const info = { start: u64(v, infoOff, "info start"), end: u64(v, infoOff + 8, "info end") };
  return { alg: name, info, legacy };
}

/** Encodes the info section. */
export function encodeInfo(info: Info): Uint8Array {
  const b = new Uint8Array(INFO_SIZE);
  const v = new DataView(b.buffer);
  const ranges = [info.streamRefs, info.objectRefs, info.stream, info.namedRefs];
  ranges.forEach((r, i) => {
    v.setBigUint64(16 * i, BigInt(r.start), true);
    v.setBigUint64(16 * i + 8, BigInt(r.end), true);
  });
  v.setBigUint64(64, info.contentType, true);
  v.setBigUint64(72, BigInt(info.streamSize), true);
  return b;
}

/** The bytes of `r` in `file`, after checking the range lies inside it. */
export function slice(file: Uint8Array, r: FileRange, what: string): Uint8Array {
  if (r.end < r.start) throw new Error(`splitstream: ${what} range ends before it starts (${r.start}..${r.end})`);
  if (r.end > file.length) {
    throw new Error(`splitstream: ${what} range ${r.start}..${r.end} is outside the file (${file.length} bytes)`);
  }
  return file.subarray(r.start, r.end);
}

/** Decodes the info section (a longer section is accepted, its extra bytes ignored). */
export function decodeInfo(file: Uint8Array, range: FileRange): Info {
  const b = slice(file, range, "info");
  if (b.length < INFO_SIZE) throw new Error(`splitstream: info section too short (${b.length} bytes)`);
  const v = new DataView(b.buffer, b.byteOffset, INFO_SIZE);
  const r = (i: number, what: string) => ({ start: u64(v, 16 * i, what), end: u64(v, 16 * i + 8, what) });
  return {
    streamRefs: r(0, "stream_refs"),
    objectRefs: r(1, "object_refs"),
    stream: r(2, "stream"),
    namedRefs: r(3, "named_refs"),
    contentType: v.getBigUint64(64, true),
    streamSize: u64(v, 72, "stream size"),
  };
}

/** Digest size of `alg` (the size of one entry of a ref array). */
export function refSize(alg: HashAlg): number {
  return DIGEST_SIZE[alg];
}
