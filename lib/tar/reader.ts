/**
 * Streaming tar reader with composefs-rs/tar-core semantics (oci-and-boot.md §4.2): every header
 * byte is kept so the importer can store headers inline, bodies stream as views of the source's
 * chunks, and every byte after the end-of-archive marker is handed back.
 *
 * @module
 */
import {
  BLOCK,
  field,
  headerFormat,
  isZeroBlock,
  numberField,
  paddingOf,
  parseNumericField,
  parsePaxMtime,
  parsePaxRecords,
  parsePaxUint,
  type PaxRecord,
  safeNumber,
  type TarTime,
  verifyChecksum,
} from "./header.ts";
import { type ByteSource, ChunkReader } from "./source.ts";
import { concat, ensureCapacity } from "../bytes/mod.ts";

/** What an entry is, from its typeflag (`0`/NUL/`7` → file; anything unknown → other). */
export type TarEntryKind = "file" | "hardlink" | "symlink" | "char" | "block" | "dir" | "fifo" | "other";

const KINDS: Record<string, TarEntryKind> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "hardlink",
  "2": "symlink",
  "3": "char",
  "4": "block",
  "5": "dir",
  "6": "fifo",
};

const HEADER_ONLY = new Set<TarEntryKind>(["hardlink", "symlink", "char", "block", "dir", "fifo"]);

/** Limits against hostile archives. */
export interface TarLimits {
  /** Extension data (PAX + GNU long name/link) allowed before one entry, and per global header. Default 1 MiB. */
  maxExtensionSize?: number;
  /** Extension headers allowed before one entry. Default 16. */
  maxPendingExtensions?: number;
}

const DEFAULT_LIMITS: Required<TarLimits> = { maxExtensionSize: 1 << 20, maxPendingExtensions: 16 };

/** Metadata of one entry, with PAX and GNU extensions applied (global PAX headers are not). */
export interface TarMeta {
  kind: TarEntryKind;
  /** The raw typeflag character. */
  typeflag: string;
  /** Resolved path bytes: PAX `path` > GNU `L` > ustar prefix + "/" + name > name. */
  pathBytes: Uint8Array;
  /** Link target bytes (PAX `linkpath` > GNU `K` > linkname), or null when empty. */
  linkBytes: Uint8Array | null;
  /** The header mode field as stored (not masked). */
  mode: number;
  /** Owner ids, truncated to 32 bits as composefs stores them. */
  uid: number;
  gid: number;
  /** Content size after PAX `size`. */
  size: number;
  mtime: TarTime;
  uname: Uint8Array;
  gname: Uint8Array;
  /** Device numbers, null when the field is empty. */
  devMajor: number | null;
  devMinor: number | null;
  /** `SCHILY.xattr.*` values by name (later duplicates win); `LIBARCHIVE.xattr.*` is ignored. */
  xattrs: Map<string, Uint8Array>;
  /** All PAX records of the entry's `x` header, in order. */
  pax: PaxRecord[];
}

const td = new TextDecoder();

/** One archive member. Read its body (optional) before pulling the next event. */
export interface TarEntry extends TarMeta {
  type: "entry";
  /** Offset of the first header block (of the extension headers, if any). */
  offset: number;
  /**
   * Every header block of this entry, byte for byte: PAX/GNU extension headers, their data and
   * padding, the main header. A copy, independent of the source's chunks (do not modify).
   */
  headerBytes: Uint8Array;
  /** Offset of the first content byte. */
  dataOffset: number;
  /** Padding bytes after the content. */
  padSize: number;
  /** `pathBytes` decoded as UTF-8 (lossy). */
  readonly path: string;
  /** `linkBytes` decoded as UTF-8 (lossy), or null. */
  readonly linkTarget: string | null;
  /**
   * The content as chunks, once. Chunks are views of the source's chunks: do not modify them, and
   * with a source that reuses its buffers, be done with each before asking for the one after next.
   */
  body(): AsyncGenerator<Uint8Array>;
  /** The padding bytes exactly as in the archive (skips any unread content first). */
  padding(): Promise<Uint8Array>;
  /** The whole content in one array; throws if larger than `max` (default 16 MiB). */
  bytes(max?: number): Promise<Uint8Array>;
}

/** A global PAX header (`g`): reported with its raw bytes, never applied. */
export interface TarGlobalHeader {
  type: "global";
  offset: number;
  headerBytes: Uint8Array;
  records: PaxRecord[];
}

/** End of the archive. */
export interface TarEnd {
  type: "end";
  offset: number;
  /** The two zero blocks, or empty when the archive stopped cleanly at a header boundary without them. */
  marker: Uint8Array;
  /** Every byte after the marker (record padding, garbage), in order. Read it once. */
  trailing(): AsyncGenerator<Uint8Array>;
}

export type TarEvent = TarEntry | TarGlobalHeader | TarEnd;

/** Where an extension's data lies in the entry's header bytes. */
type Span = [start: number, end: number];

/** Where each extension of an entry lies in its header bytes. */
interface Spans {
  pax: Span | null;
  longName: Span | null;
  longLink: Span | null;
}

/**
 * The header blocks and extension data of the entry being read, copied as they arrive (a source
 * may reuse its buffers once later chunks are read) into one scratch buffer, and handed out as one
 * array per entry: one allocation, where a copy per block and one more to join them cost an
 * import of 25k entries a tenth of a second.
 */
class HeaderBytes {
  #buf = new Uint8Array(4 * BLOCK);
  #len = 0;
  /** Extension headers, and bytes of extension data, since the last {@link take}. */
  count = 0;
  bytes = 0;
  spans: Spans = { pax: null, longName: null, longLink: null };

  /** Appends a copy of `b`; returns where it starts. */
  append(b: Uint8Array): number {
    const at = this.#len;
    this.#buf = ensureCapacity(this.#buf, at, at + b.length);
    this.#buf.set(b, at);
    this.#len = at + b.length;
    return at;
  }

  /** Everything appended, as a new array, and the spans found in it; starts over. */
  take(): [Uint8Array, Spans] {
    const out: [Uint8Array, Spans] = [this.#buf.slice(0, this.#len), this.spans];
    this.#len = 0;
    this.count = 0;
    this.bytes = 0;
    this.spans = { pax: null, longName: null, longLink: null };
    return out;
  }
}

const NO_SPANS: Spans = { pax: null, longName: null, longLink: null };

/**
 * Reads a tar stream event by event.
 *
 * @example
 * ```ts
 * for await (const ev of readTar(file.readable)) {
 *   if (ev.type === "entry") {
 *     sink.inline(ev.headerBytes);
 *     for await (const c of ev.body()) sink.data(c);
 *     sink.inline(await ev.padding());
 *   } else if (ev.type === "end") {
 *     sink.inline(ev.marker);
 *     for await (const c of ev.trailing()) sink.inline(c);
 *   }
 * }
 * ```
 */
export async function* readTar(
  src: AsyncIterable<Uint8Array> | ByteSource,
  limits: TarLimits = {},
): AsyncGenerator<TarEvent> {
  const lim = { ...DEFAULT_LIMITS, ...limits };
  const r = new ChunkReader(src);
  const pending = new HeaderBytes();
  let start = 0;
  for (;;) {
    const offset = r.pos;
    if (pending.count === 0) start = offset;
    // A view that the next read may invalidate: what outlives it is copied first.
    const h = await r.readExact(BLOCK, "a header");
    if (h === null) {
      if (pending.count > 0) throw new Error(`unexpected end of archive after extension headers (offset ${offset})`);
      yield endEvent(r, offset, new Uint8Array(0));
      return;
    }
    if (isZeroBlock(h)) {
      const h1 = await r.readExact(BLOCK, "the end-of-archive marker");
      if (h1 === null) throw new Error(`unexpected end of archive after one zero block (offset ${r.pos})`);
      if (!isZeroBlock(h1)) throw new Error(`stray zero block before a header at offset ${offset + BLOCK}`);
      if (pending.count > 0) throw new Error(`extension headers without an entry before the end of archive`);
      yield endEvent(r, offset, new Uint8Array(2 * BLOCK));
      return;
    }
    verifyChecksum(h, offset);
    const typeflag = String.fromCharCode(h[156]);
    const format = headerFormat(h);
    const extension = format !== "v7" && (typeflag === "x" || typeflag === "g" || typeflag === "L" || typeflag === "K");
    if (format !== "v7" && typeflag === "S") throw new Error(`sparse tar entries are not supported (offset ${offset})`);
    const hsize = numberField(h, 124, 12, "size");
    if (!extension) {
      let headerBytes: Uint8Array = h.slice();
      let spans = NO_SPANS;
      if (pending.count > 0) {
        pending.append(h);
        [headerBytes, spans] = pending.take();
      }
      const entry = new Entry(r, start, headerBytes, format, typeflag, hsize, spans);
      yield entry;
      await entry.padding();
      continue;
    }
    if (hsize > lim.maxExtensionSize || pending.bytes + hsize > lim.maxExtensionSize) {
      throw new Error(
        `tar extension header too large (${hsize} bytes at offset ${offset}, limit ${lim.maxExtensionSize})`,
      );
    }
    // A global header is an event of its own, except between an entry's extension headers: there
    // it is kept in that entry's header bytes, in order.
    const global = typeflag === "g" && pending.count === 0;
    if (!global && ++pending.count > lim.maxPendingExtensions) {
      throw new Error(`too many tar extension headers before one entry (limit ${lim.maxPendingExtensions})`);
    }
    pending.append(h);
    const padded = hsize + paddingOf(hsize);
    const data = padded ? await r.readExact(padded, "an extension header") : new Uint8Array(0);
    if (data === null) throw new Error(`unexpected end of archive in an extension header (offset ${offset})`);
    const at = pending.append(data);
    pending.bytes += hsize;
    if (global) {
      const [headerBytes] = pending.take();
      yield {
        type: "global",
        offset,
        headerBytes,
        records: parsePaxRecords(headerBytes.subarray(BLOCK, BLOCK + hsize)),
      };
      continue;
    }
    if (typeflag === "g") continue;
    const spans = pending.spans;
    if (typeflag === "x") {
      if (spans.pax) throw new Error(`duplicate PAX header before one entry (offset ${offset})`);
      spans.pax = [at, at + hsize];
      continue;
    }
    // GNU long names and links end in a NUL that is not part of them.
    const span: Span = [at, hsize > 0 && data[hsize - 1] === 0 ? at + hsize - 1 : at + hsize];
    if (typeflag === "L") {
      if (spans.longName) throw new Error(`duplicate GNU long name header (offset ${offset})`);
      spans.longName = span;
    } else {
      if (spans.longLink) throw new Error(`duplicate GNU long link header (offset ${offset})`);
      spans.longLink = span;
    }
  }
}

function endEvent(r: ChunkReader, offset: number, marker: Uint8Array): TarEnd {
  let used = false;
  return {
    type: "end",
    offset,
    marker,
    trailing() {
      if (used) throw new Error("tar trailing bytes already read");
      used = true;
      return r.rest();
    },
  };
}

const EMPTY = new Uint8Array(0);

/** A member, built from its header blocks; holds the reader to stream its body. */
class Entry implements TarEntry {
  readonly type = "entry";
  kind: TarEntryKind;
  typeflag: string;
  pathBytes: Uint8Array;
  linkBytes: Uint8Array | null;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: TarTime;
  uname: Uint8Array;
  gname: Uint8Array;
  devMajor: number | null;
  devMinor: number | null;
  xattrs: Map<string, Uint8Array>;
  pax: PaxRecord[];
  offset: number;
  headerBytes: Uint8Array;
  dataOffset: number;
  padSize: number;
  #r: ChunkReader;
  #remaining: number;
  #bodyStarted = false;
  #pad: Uint8Array | null = null;

  constructor(
    r: ChunkReader,
    offset: number,
    headerBytes: Uint8Array,
    format: string,
    typeflag: string,
    hsize: number,
    spans: Spans,
  ) {
    this.#r = r;
    this.offset = offset;
    this.headerBytes = headerBytes;
    // The main header is the last block; extension data are views of the same bytes.
    const h = headerBytes.subarray(headerBytes.length - BLOCK);
    const span = (s: Span | null) => s && headerBytes.subarray(s[0], s[1]);
    this.dataOffset = r.pos;
    this.typeflag = typeflag;
    const ext = format !== "v7";
    let pathBytes = field(h, 0, 100);
    if (format === "ustar" && h[345] !== 0) {
      const prefix = field(h, 345, 155);
      const full = new Uint8Array(prefix.length + 1 + pathBytes.length);
      full.set(prefix);
      full[prefix.length] = 0x2f;
      full.set(pathBytes, prefix.length + 1);
      pathBytes = full;
    }
    const longName = span(spans.longName);
    if (longName) pathBytes = longName;
    let linkBytes: Uint8Array = span(spans.longLink) ?? field(h, 157, 100);
    let uid = parseNumericField(h, 108, 8, "uid") ?? 0;
    let gid = parseNumericField(h, 116, 8, "gid") ?? 0;
    let mtime: TarTime = { sec: numberField(h, 136, 12, "mtime"), nsec: 0, pax: null };
    let size = hsize;
    let uname = ext ? field(h, 265, 32) : EMPTY;
    let gname = ext ? field(h, 297, 32) : EMPTY;
    const xattrs = new Map<string, Uint8Array>();
    const paxData = span(spans.pax);
    const pax = paxData ? parsePaxRecords(paxData) : [];
    for (const { key, value } of pax) {
      switch (key) {
        case "path":
          pathBytes = value;
          break;
        case "linkpath":
          linkBytes = value;
          break;
        case "size":
          size = safeNumber(parsePaxUint(value, "size"), "size");
          break;
        case "uid":
          uid = parsePaxUint(value, "uid");
          break;
        case "gid":
          gid = parsePaxUint(value, "gid");
          break;
        case "mtime":
          mtime = parsePaxMtime(value);
          break;
        case "uname":
          uname = value;
          break;
        case "gname":
          gname = value;
          break;
        default:
          if (key.startsWith("SCHILY.xattr.")) xattrs.set(key.slice(13), value);
          else if (key.startsWith("GNU.sparse.")) {
            throw new Error("sparse tar entries are not supported (PAX GNU.sparse)");
          }
      }
    }
    if (pathBytes.length === 0) throw new Error("tar entry with an empty path");
    const kind = KINDS[typeflag] ?? "other";
    if (HEADER_ONLY.has(kind) && size !== 0) {
      throw new Error(`tar ${kind} entry ${JSON.stringify(td.decode(pathBytes))} has a non-zero size ${size}`);
    }
    const devMajor = ext ? parseNumericField(h, 329, 8, "devmajor") : null;
    const devMinor = ext ? parseNumericField(h, 337, 8, "devminor") : null;
    this.kind = kind;
    this.pathBytes = pathBytes;
    this.linkBytes = linkBytes.length ? linkBytes : null;
    this.mode = numberField(h, 100, 8, "mode");
    this.uid = u32(uid);
    this.gid = u32(gid);
    this.size = size;
    this.mtime = mtime;
    this.uname = uname;
    this.gname = gname;
    this.devMajor = devMajor === null ? null : safeNumber(devMajor, "devmajor");
    this.devMinor = devMinor === null ? null : safeNumber(devMinor, "devminor");
    this.xattrs = xattrs;
    this.pax = pax;
    this.padSize = paddingOf(size);
    this.#remaining = size;
  }

  get path(): string {
    return td.decode(this.pathBytes);
  }

  get linkTarget(): string | null {
    return this.linkBytes ? td.decode(this.linkBytes) : null;
  }

  #what(): string {
    return `the content of ${JSON.stringify(this.path)}`;
  }

  async *body(): AsyncGenerator<Uint8Array> {
    if (this.#bodyStarted || this.#pad) throw new Error("tar entry body already read");
    this.#bodyStarted = true;
    while (this.#remaining > 0) {
      let c: Uint8Array;
      try {
        c = await this.#r.readSome(this.#remaining);
      } catch (e) {
        throw new Error(`reading ${this.#what()}: ${(e as Error).message}`, { cause: e });
      }
      this.#remaining -= c.length;
      yield c;
    }
  }

  async padding(): Promise<Uint8Array> {
    if (this.#pad) return this.#pad;
    try {
      if (this.#remaining > 0) await this.#r.skip(this.#remaining);
      this.#remaining = 0;
      const p = this.padSize ? await this.#r.readExact(this.padSize) : EMPTY;
      if (p === null) throw new Error("unexpected end of archive");
      this.#pad = p;
    } catch (e) {
      throw new Error(`reading ${this.#what()}: ${(e as Error).message}`, { cause: e });
    }
    return this.#pad;
  }

  async bytes(max = 16 << 20): Promise<Uint8Array> {
    if (this.size > max) throw new Error(`${this.#what()} is too large (${this.size} bytes, limit ${max})`);
    const parts: Uint8Array[] = [];
    for await (const c of this.body()) parts.push(c);
    return parts.length === 1 ? parts[0] : concat(parts);
  }
}

/** Owner ids as composefs stores them (`as u32`). */
function u32(v: number | bigint): number {
  return typeof v === "bigint" ? Number(BigInt.asUintN(32, v)) : v >>> 0;
}
