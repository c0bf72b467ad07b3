/**
 * Tar writer: POSIX ustar headers plus a PAX (`x`) header when a value does not fit (long or
 * non-ASCII names and links, big numbers, sub-second or negative mtimes, xattrs). Used by tests to
 * build layers and by tar export.
 *
 * @module
 */
import { BLOCK, paddingOf, setChecksum } from "./header.ts";

/** Entry kinds the writer produces. */
export type TarWriteKind = "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo";

/** One entry to write. Unset fields get the defaults shown. */
export interface TarWriteEntry {
  path: string;
  kind: TarWriteKind;
  /** Content size of a file (default: the length of the data given to {@link buildTar}). */
  size?: number;
  /** Permission bits (default 0644 for files, 0755 for directories, 0777 for symlinks, 0644 otherwise). */
  mode?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  /** Seconds, or a decimal string (`"1700000000.123456789"`) written verbatim as PAX `mtime`. Default 0. */
  mtime?: number | string;
  /** Symlink or hardlink target. */
  linkTarget?: string;
  devMajor?: number;
  devMinor?: number;
  /** Extended attributes, written as `SCHILY.xattr.<name>` (string values as UTF-8). */
  xattrs?: Record<string, Uint8Array | string>;
  /** Extra PAX records, written after the generated ones (tests use this for unusual archives). */
  pax?: Record<string, Uint8Array | string>;
}

const te = new TextEncoder();
const TYPEFLAG: Record<TarWriteKind, string> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
};
const MAX_OCT8 = 0o7777777;
const MAX_OCT12 = 0o77777777777;

/** End-of-archive marker: two zero blocks. */
export const END_OF_ARCHIVE: Uint8Array = new Uint8Array(2 * BLOCK);

function bytesOf(v: Uint8Array | string): Uint8Array {
  return typeof v === "string" ? te.encode(v) : v;
}

/** One PAX record `"<len> key=value\n"`, where len counts the whole record including itself. */
export function paxRecord(key: string, value: Uint8Array | string): Uint8Array {
  const v = bytesOf(value);
  const rest = te.encode(` ${key}=`).length + v.length + 1;
  let len = rest + String(rest).length;
  if (String(len).length !== String(rest).length) len = rest + String(len).length;
  const out = new Uint8Array(len);
  const pre = te.encode(`${len} ${key}=`);
  out.set(pre);
  out.set(v, pre.length);
  out[len - 1] = 0x0a;
  return out;
}

function putOctal(h: Uint8Array, off: number, len: number, v: number): void {
  const s = Math.trunc(v).toString(8).padStart(len - 1, "0");
  for (let i = 0; i < len - 1; i++) h[off + i] = s.charCodeAt(i);
}

/** Splits a path into ustar (prefix, name) when possible. */
function ustarName(path: Uint8Array): { prefix: Uint8Array; name: Uint8Array } | null {
  if (path.length <= 100) return { prefix: new Uint8Array(0), name: path };
  for (let i = Math.min(path.length - 1, 155); i > 0; i--) {
    if (path[i] === 0x2f && path.length - i - 1 <= 100 && path.length - i - 1 > 0) {
      return { prefix: path.subarray(0, i), name: path.subarray(i + 1) };
    }
  }
  return null;
}

const isAscii = (b: Uint8Array) => b.every((c) => c >= 0x20 && c < 0x7f);

function block(
  name: Uint8Array,
  prefix: Uint8Array,
  e: TarWriteEntry,
  typeflag: string,
  size: number,
  mtime: number,
  link: Uint8Array,
): Uint8Array {
  const h = new Uint8Array(BLOCK);
  h.set(name.subarray(0, 100), 0);
  putOctal(h, 100, 8, e.mode ?? defaultMode(e.kind));
  putOctal(h, 108, 8, Math.min(e.uid ?? 0, MAX_OCT8));
  putOctal(h, 116, 8, Math.min(e.gid ?? 0, MAX_OCT8));
  putOctal(h, 124, 12, size);
  putOctal(h, 136, 12, Math.min(Math.max(mtime, 0), MAX_OCT12));
  h[156] = typeflag.charCodeAt(0);
  h.set(link.subarray(0, 100), 157);
  h.set(te.encode("ustar\x0000"), 257);
  h.set(te.encode(e.uname ?? "").subarray(0, 32), 265);
  h.set(te.encode(e.gname ?? "").subarray(0, 32), 297);
  putOctal(h, 329, 8, Math.min(e.devMajor ?? 0, MAX_OCT8));
  putOctal(h, 337, 8, Math.min(e.devMinor ?? 0, MAX_OCT8));
  h.set(prefix.subarray(0, 155), 345);
  setChecksum(h);
  return h;
}

function defaultMode(kind: TarWriteKind): number {
  return kind === "dir" ? 0o755 : kind === "symlink" ? 0o777 : 0o644;
}

/**
 * The header blocks of one entry: an optional PAX header (with its data and padding), then the
 * ustar header. The caller writes `size` content bytes and {@link paddingOf}(size) zero bytes after it.
 *
 * @example
 * ```ts
 * const h = encodeHeader({ path: "etc/hostname", kind: "file", size: 5, mtime: "1700000000.5" });
 * ```
 */
export function encodeHeader(e: TarWriteEntry): Uint8Array {
  const size = e.kind === "file" ? (e.size ?? 0) : 0;
  if (!Number.isSafeInteger(size) || size < 0) throw new Error(`invalid tar entry size ${size}`);
  const recs: Uint8Array[] = [];
  const path = te.encode(e.path);
  const split = isAscii(path) ? ustarName(path) : null;
  if (!split) recs.push(paxRecord("path", path));
  const link = te.encode(e.linkTarget ?? "");
  if (link.length > 100 || !isAscii(link)) recs.push(paxRecord("linkpath", link));
  if (size > MAX_OCT12) recs.push(paxRecord("size", String(size)));
  if ((e.uid ?? 0) > MAX_OCT8) recs.push(paxRecord("uid", String(e.uid)));
  if ((e.gid ?? 0) > MAX_OCT8) recs.push(paxRecord("gid", String(e.gid)));
  const mt = e.mtime ?? 0;
  const mtInt = typeof mt === "string" ? Math.trunc(Number(mt.split(".")[0])) : Math.trunc(mt);
  if (
    typeof mt === "string"
      ? mt !== String(mtInt) || mtInt < 0 || mtInt > MAX_OCT12
      : mt !== mtInt || mt < 0 || mt > MAX_OCT12
  ) {
    recs.push(paxRecord("mtime", String(mt)));
  }
  if (e.uname && !isAscii(te.encode(e.uname))) recs.push(paxRecord("uname", e.uname));
  if (e.gname && !isAscii(te.encode(e.gname))) recs.push(paxRecord("gname", e.gname));
  for (const [k, v] of Object.entries(e.xattrs ?? {})) recs.push(paxRecord(`SCHILY.xattr.${k}`, v));
  for (const [k, v] of Object.entries(e.pax ?? {})) recs.push(paxRecord(k, v));
  const { prefix, name } = split ?? { prefix: new Uint8Array(0), name: path.subarray(0, 100) };
  const main = block(name, prefix, e, TYPEFLAG[e.kind], size, mtInt, link);
  if (!recs.length) return main;
  const plen = recs.reduce((a, r) => a + r.length, 0);
  const out = new Uint8Array(BLOCK + plen + paddingOf(plen) + BLOCK);
  const base = e.path.replace(/\/+$/, "").split("/").pop() ?? "";
  const paxName = te.encode(`PaxHeaders/${base}`.slice(0, 100).replace(/[^\x20-\x7e]/g, "_"));
  out.set(block(paxName, new Uint8Array(0), { ...e, mode: 0o644 }, "x", plen, mtInt, new Uint8Array(0)));
  let o = BLOCK;
  for (const r of recs) {
    out.set(r, o);
    o += r.length;
  }
  out.set(main, out.length - BLOCK);
  return out;
}

/** An entry plus its content, for {@link writeTar}. */
export interface TarWriteItem {
  entry: TarWriteEntry;
  /** File content; its total length must equal `entry.size` when that is set. */
  data?: Uint8Array | AsyncIterable<Uint8Array>;
}

/**
 * Streams a tar archive: headers, content, padding, and the end-of-archive marker (plus
 * `trailing` bytes after it, e.g. record padding).
 *
 * @example
 * ```ts
 * const chunks = writeTar([{ entry: { path: "a", kind: "file" }, data: bytes }]);
 * await ReadableStream.from(chunks).pipeTo(file.writable);
 * ```
 */
export async function* writeTar(
  items: Iterable<TarWriteItem> | AsyncIterable<TarWriteItem>,
  opts: { trailing?: Uint8Array } = {},
): AsyncGenerator<Uint8Array> {
  for await (const { entry, data } of items) {
    let size = entry.size ?? 0;
    if (entry.kind === "file" && entry.size === undefined && data instanceof Uint8Array) size = data.length;
    yield encodeHeader({ ...entry, size });
    let n = 0;
    if (data instanceof Uint8Array) {
      n = data.length;
      if (n) yield data;
    } else if (data) {
      for await (const c of data) {
        n += c.length;
        yield c;
      }
    }
    if (n !== (entry.kind === "file" ? size : 0)) {
      throw new Error(`tar entry ${JSON.stringify(entry.path)}: ${n} content bytes given for size ${size}`);
    }
    if (paddingOf(n)) yield new Uint8Array(paddingOf(n));
  }
  yield END_OF_ARCHIVE;
  if (opts.trailing?.length) yield opts.trailing;
}

/** An entry plus its content in memory, for {@link buildTar}. */
export type TarBuildItem = { entry: TarWriteEntry; data?: Uint8Array };

/** A whole archive in memory (tests, small layers); `data` may only be a `Uint8Array` here. */
export function buildTar(
  items: TarBuildItem[],
  opts: { trailing?: Uint8Array } = {},
): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const { entry, data } of items) {
    const size = entry.kind === "file" ? (entry.size ?? data?.length ?? 0) : 0;
    if ((data?.length ?? 0) !== size) {
      throw new Error(
        `tar entry ${JSON.stringify(entry.path)}: ${data?.length ?? 0} content bytes given for size ${size}`,
      );
    }
    parts.push(encodeHeader({ ...entry, size }));
    if (data?.length) parts.push(data, new Uint8Array(paddingOf(data.length)));
  }
  parts.push(END_OF_ARCHIVE);
  if (opts.trailing) parts.push(opts.trailing);
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
