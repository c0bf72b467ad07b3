/**
 * A layer's tar entries as its import parsed them, packed into two small buffers that can be
 * handed to another thread: exactly what the merge needs of each entry (the inputs of
 * {@link layerEntry}) and the object of each file over 64 bytes. With it, the image of a pull is
 * built without reading the layer splitstreams back and parsing their tar a second time.
 *
 * Pure: no I/O. Numbers are LEB128 varints (most fields are small), paths are front-coded
 * against the previous entry's (tar order shares long prefixes), so a 20k-entry layer packs into
 * well under a MiB besides its object digests.
 *
 * @module
 */
import type { TarEntryKind } from "../tar/reader.ts";
import { INLINE_CONTENT_MAX } from "../tar/segments.ts";
import { DIGEST_SIZE, type HashAlg } from "../fsverity/digest.ts";
import { EMPTY_FILE, type LeafContent } from "./tree.ts";
import { ensureCapacity } from "../bytes/mod.ts";
import type { EntryMeta } from "./merge.ts";

/** The packed entries of one layer. */
export interface EntryLog {
  /** The entries, in tar order. */
  entries: Uint8Array<ArrayBuffer>;
  /** The fs-verity digest of each file stored as an object, in tar order, concatenated. */
  objects: Uint8Array<ArrayBuffer>;
  /** Number of entries. */
  count: number;
}

const KINDS: TarEntryKind[] = ["file", "hardlink", "symlink", "char", "block", "dir", "fifo", "other"];
const KIND_CODE = new Map(KINDS.map((k, i) => [k, i]));
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A byte buffer that doubles as it fills. */
class Bytes {
  buf: Uint8Array<ArrayBuffer>;
  len = 0;

  constructor(size: number) {
    this.buf = new Uint8Array(size);
  }

  reserve(n: number): void {
    this.buf = ensureCapacity(this.buf, this.len, this.len + n);
  }

  /** An unsigned integer up to 2^53 (floating-point arithmetic: bit operators stop at 32 bits). */
  uint(v: number): void {
    this.reserve(8);
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.len++] = v;
  }

  bytes(b: Uint8Array): void {
    this.uint(b.length);
    this.raw(b);
  }

  raw(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  take(): Uint8Array<ArrayBuffer> {
    return this.buf.slice(0, this.len);
  }
}

/** Collects an {@link EntryLog} while a layer is imported. */
export class EntryLogWriter {
  #entries = new Bytes(64 << 10);
  #objects = new Bytes(16 << 10);
  #count = 0;
  #prev: Uint8Array = new Uint8Array(0);
  #digestSize: number;

  /** `alg`: the repository's hash, which sets the length of object digests. */
  constructor(alg: HashAlg) {
    this.#digestSize = DIGEST_SIZE[alg];
  }

  /**
   * Adds a tar entry. A regular file of ≤ 64 bytes brings its content (`inline`); a larger one's
   * object is given to {@link object}, in the same order as the entries.
   */
  entry(meta: EntryMeta & { size: number }, inline?: Uint8Array): void {
    const e = this.#entries;
    const code = KIND_CODE.get(meta.kind);
    if (code === undefined) throw new Error(`entry log: unknown entry kind ${meta.kind}`);
    e.uint(code);
    e.uint(meta.typeflag.charCodeAt(0) || 0);
    e.uint(meta.mode);
    e.uint(meta.uid);
    e.uint(meta.gid);
    e.uint(meta.mtime.sec < 0 ? -2 * meta.mtime.sec - 1 : 2 * meta.mtime.sec);
    e.uint(meta.mtime.nsec);
    const path = meta.pathBytes, prev = this.#prev;
    let shared = 0;
    const max = Math.min(path.length, prev.length);
    while (shared < max && path[shared] === prev[shared]) shared++;
    e.uint(shared);
    e.bytes(path.subarray(shared));
    this.#prev = path;
    e.bytes(meta.linkBytes ?? EMPTY);
    e.uint(meta.devMajor === null ? 0 : meta.devMajor + 1);
    e.uint(meta.devMinor === null ? 0 : meta.devMinor + 1);
    e.uint(meta.xattrs.size);
    for (const [name, value] of meta.xattrs) {
      e.bytes(encoder.encode(name));
      e.bytes(value);
    }
    if (meta.kind === "file") {
      e.uint(meta.size);
      if (meta.size <= INLINE_CONTENT_MAX) {
        if (inline?.length !== meta.size) throw new Error(`entry log: ${meta.size}-byte file without its content`);
        e.raw(inline);
      }
    }
    this.#count++;
  }

  /** The object of the next file over 64 bytes. */
  object(digest: Uint8Array): void {
    if (digest.length !== this.#digestSize) throw new Error(`entry log: a ${digest.length}-byte object digest`);
    this.#objects.raw(digest);
  }

  /** The log (copied out, sized to fit). */
  finish(): EntryLog {
    return { entries: this.#entries.take(), objects: this.#objects.take(), count: this.#count };
  }
}

const EMPTY = new Uint8Array(0);

/**
 * The entries of `log`, each with its file content (inline data, or the object of repository hash
 * `alg`), ready for {@link layerEntry}. Contents and digests are views of the log's buffers.
 */
export function* readEntryLog(log: EntryLog, alg: HashAlg): Generator<{ meta: EntryMeta; file?: LeafContent }> {
  const b = log.entries;
  const digestSize = DIGEST_SIZE[alg];
  let p = 0, object = 0;
  const corrupt = (why: string): never => {
    throw new Error(`entry log is corrupt at byte ${p}: ${why}`);
  };
  const uint = (): number => {
    let v = 0, scale = 1;
    for (;;) {
      if (p >= b.length) corrupt("truncated number");
      const x = b[p++];
      v += (x & 0x7f) * scale;
      if (x < 0x80) return v;
      scale *= 0x80;
      if (scale > 2 ** 56) corrupt("number too large");
    }
  };
  const bytes = (n = uint()): Uint8Array => {
    if (p + n > b.length) corrupt("truncated bytes");
    return b.subarray(p, p += n);
  };
  let prev = EMPTY;
  for (let i = 0; i < log.count; i++) {
    const kind = KINDS[uint()] ?? corrupt("unknown kind");
    const typeflag = String.fromCharCode(uint());
    const mode = uint(), uid = uint(), gid = uint();
    const zsec = uint();
    const mtime = { sec: zsec % 2 ? -(zsec + 1) / 2 : zsec / 2, nsec: uint(), pax: null };
    const shared = uint();
    if (shared > prev.length) corrupt("path prefix longer than the previous path");
    const suffix = bytes();
    const pathBytes = new Uint8Array(shared + suffix.length);
    pathBytes.set(prev.subarray(0, shared));
    pathBytes.set(suffix, shared);
    prev = pathBytes;
    const link = bytes();
    const major = uint(), minor = uint();
    const xattrs = new Map<string, Uint8Array>();
    for (let n = uint(); n > 0; n--) xattrs.set(decoder.decode(bytes()), bytes());
    const meta: EntryMeta = {
      kind,
      typeflag,
      pathBytes,
      linkBytes: link.length ? link : null,
      mode,
      uid,
      gid,
      mtime,
      devMajor: major === 0 ? null : major - 1,
      devMinor: minor === 0 ? null : minor - 1,
      xattrs,
    };
    if (kind !== "file") {
      yield { meta };
      continue;
    }
    const size = uint();
    let file: LeafContent;
    if (size <= INLINE_CONTENT_MAX) file = size === 0 ? EMPTY_FILE : { kind: "inline", data: bytes(size) };
    else {
      const at = object++ * digestSize;
      if (at + digestSize > log.objects.length) corrupt("more files than objects");
      file = { kind: "external", id: { alg, digest: log.objects.subarray(at, at + digestSize) }, size };
    }
    yield { meta, file };
  }
  if (p !== b.length) corrupt("bytes after the last entry");
  if (object * digestSize !== log.objects.length) corrupt("more objects than files");
}
