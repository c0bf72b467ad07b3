/**
 * Dumpfile parser (composefs-formats.md §5.1–§5.3): one line at a time into a {@link DumpEntry},
 * and a {@link TreeBuilder} that assembles entries into a lib/tree tree. Input lines are byte
 * strings (the file decoded as latin1), so raw non-UTF-8 bytes survive.
 *
 * @module
 */
import { fromHex, type HashAlg } from "../fsverity/digest.ts";
import {
  type ByteString,
  checkPath,
  compareByteArrays,
  Directory,
  EMPTY_FILE,
  latin1Decode,
  latin1Encode,
  Leaf,
  type LeafContent,
  newStat,
  type ObjectId,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_IFSOCK,
  type Stat,
  utf8,
} from "../tree/tree.ts";
import { unescapeField, unescapeOptional } from "./escape.ts";

/** One parsed dumpfile line. Numeric fields of hardlink lines are not parsed (null). */
export interface DumpEntry {
  path: ByteString;
  size: number;
  /** Full st_mode including the file type. */
  mode: number;
  /** True when MODE had the `@` hardlink prefix; `payload` is then the target path. */
  hardlink: boolean;
  nlink: number | null;
  uid: number;
  gid: number;
  rdev: number;
  mtimeSec: number;
  mtimeNsec: number;
  payload: ByteString | null;
  content: ByteString | null;
  digest: string | null;
  xattrs: Array<[ByteString, Uint8Array]>;
}

/** Largest inline content accepted (C mkcomposefs's limit). */
export const MAX_INLINE_CONTENT = 5000;
/** Largest symlink target accepted (C: shorter than PATH_MAX). */
export const MAX_SYMLINK = 4095;

/** True when `s` is a non-empty run of ASCII digits below `radix` (8 or 10); no regex, it runs per field. */
function isDigits(s: string, radix: number): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d >= radix) return false;
  }
  return true;
}

function parseUint(field: string, what: string): number {
  if (!isDigits(field, 10)) throw new Error(`invalid ${what} ${JSON.stringify(field)}`);
  const n = Number(field);
  if (!Number.isSafeInteger(n)) throw new Error(`${what} ${field} is too large`);
  return n;
}

function parseMtime(field: string): [number, number] {
  const dot = field.indexOf(".");
  const secText = field.slice(field.startsWith("-") ? 1 : 0, dot), nsecText = field.slice(dot + 1);
  if (dot < 0 || !isDigits(secText, 10) || !isDigits(nsecText, 10)) {
    throw new Error(`invalid mtime ${JSON.stringify(field)}`);
  }
  const sec = Number(field.slice(0, dot)), nsec = Number(nsecText);
  if (!Number.isSafeInteger(sec)) throw new Error(`mtime ${field} is out of range`);
  if (nsec >= 1e9) throw new Error(`mtime nanoseconds out of range in ${field}`);
  return [sec, nsec];
}

/** Parses one dumpfile line (without its newline) into an entry. */
export function parseLine(line: string): DumpEntry {
  const f = line.split(" ");
  if (f.length < 11) throw new Error(`expected at least 11 fields, found ${f.length}`);
  const path = unescapeField(f[0]);
  if (path.length > 4096) throw new Error("path longer than 4096 bytes");
  if (path.includes("\0")) throw new Error("path contains a NUL byte");
  checkPath(path);
  const hardlink = f[2].startsWith("@");
  const modeText = hardlink ? f[2].slice(1) : f[2];
  if (!isDigits(modeText, 8)) throw new Error(`invalid mode ${JSON.stringify(f[2])}`);
  const mode = parseInt(modeText, 8);
  const payload = unescapeOptional(f[8]);
  if (hardlink) {
    if ((mode & S_IFMT) === S_IFDIR) throw new Error("a directory cannot be a hardlink");
    if (payload === null) throw new Error("hardlink without a target path");
    return {
      path,
      size: 0,
      mode,
      hardlink,
      nlink: null,
      uid: 0,
      gid: 0,
      rdev: 0,
      mtimeSec: 0,
      mtimeNsec: 0,
      payload,
      content: null,
      digest: null,
      xattrs: [],
    };
  }
  const [mtimeSec, mtimeNsec] = parseMtime(f[7]);
  const digest = f[10] === "-" ? null : f[10];
  if (digest !== null && !/^[0-9a-fA-F]+$/.test(digest)) throw new Error(`invalid digest ${JSON.stringify(digest)}`);
  const xattrs: Array<[ByteString, Uint8Array]> = [];
  let keyBytes = 0;
  for (let i = 11; i < f.length; i++) {
    const eq = f[i].indexOf("=");
    if (eq < 0) throw new Error(`xattr without '=': ${JSON.stringify(f[i])}`);
    const key = unescapeField(f[i].slice(0, eq));
    const value = unescapeField(f[i].slice(eq + 1));
    if (key === "" || key.includes("\0")) throw new Error(`invalid xattr name ${JSON.stringify(f[i])}`);
    if (key.length > 255) throw new Error("xattr name longer than 255 bytes");
    if (value.length > 65535) throw new Error("xattr value longer than 65535 bytes");
    keyBytes += key.length;
    xattrs.push([key, latin1Encode(value)]);
  }
  if (keyBytes > 65535) throw new Error("xattr names longer than 65535 bytes in total");
  return {
    path,
    size: parseUint(f[1], "size"),
    mode,
    hardlink,
    nlink: parseUint(f[3], "nlink"),
    uid: parseUint(f[4], "uid"),
    gid: parseUint(f[5], "gid"),
    rdev: parseUint(f[6], "rdev"),
    mtimeSec,
    mtimeNsec,
    payload,
    content: unescapeOptional(f[9]),
    digest,
    xattrs,
  };
}

function statOf(e: DumpEntry): Stat {
  // Most entries have no xattrs: no map for them (newStat shares one empty map).
  const xattrs = e.xattrs.length === 0 ? undefined : new Map<ByteString, Uint8Array>();
  for (const [k, v] of e.xattrs) {
    // With duplicate names the greatest value survives (composefs-rs sorts, then dedups).
    const old = xattrs!.get(k);
    if (old === undefined || compareByteArrays(v, old) > 0) xattrs!.set(k, v);
  }
  return newStat({ mode: e.mode, uid: e.uid, gid: e.gid, mtimeSec: e.mtimeSec, mtimeNsec: e.mtimeNsec, xattrs });
}

const OBJECT_PATH = /(?:^|\/)([0-9a-fA-F]{2})\/([0-9a-fA-F]{62}|[0-9a-fA-F]{126})$/;

/**
 * The object id named by a path ending in `XX/YYYY…` (any prefix is ignored), or null. Without
 * `alg` the hash is inferred from the length.
 */
export function parseObjectPath(path: ByteString, alg?: HashAlg): ObjectId | null {
  const m = OBJECT_PATH.exec(path);
  if (!m) return null;
  const found: HashAlg = m[2].length === 62 ? "sha256" : "sha512";
  if (alg !== undefined && alg !== found) return null;
  return { alg: found, digest: fromHex(m[1] + m[2]) };
}

function digestId(hex: string): ObjectId {
  if (hex.length === 64) return { alg: "sha256", digest: fromHex(hex) };
  if (hex.length === 128) return { alg: "sha512", digest: fromHex(hex) };
  throw new Error(`digest ${hex} has neither sha256 nor sha512 length`);
}

function leafContent(e: DumpEntry, alg: HashAlg | undefined): LeafContent {
  const type = e.mode & S_IFMT;
  const noData = () => {
    if (e.content !== null || e.digest !== null) throw new Error("content or digest given for a file without data");
  };
  const noRdev = () => {
    if (e.rdev !== 0) throw new Error("rdev given for a file that is not a device");
  };
  switch (type) {
    case S_IFREG:
      noRdev();
      if (e.payload !== null) {
        if (e.digest !== null) return { kind: "external", id: digestId(e.digest), size: e.size };
        {
          const id = parseObjectPath(e.payload, alg);
          if (id === null) throw new Error(`payload ${JSON.stringify(utf8(e.payload))} is not an object path`);
          return { kind: "external-noverity", id, size: e.size };
        }
      }
      if (e.digest !== null) throw new Error("digest given for an inline file");
      if (e.content === null || e.content === "") {
        return e.size > 0 ? { kind: "sparse", size: e.size } : EMPTY_FILE;
      }
      if (e.content.length > MAX_INLINE_CONTENT) {
        throw new Error(`inline content longer than ${MAX_INLINE_CONTENT} bytes`);
      }
      return { kind: "inline", data: latin1Encode(e.content) };
    case S_IFLNK:
      noData();
      noRdev();
      if (e.payload === null) throw new Error("symlink without a target");
      if (e.payload.length > MAX_SYMLINK) throw new Error(`symlink target longer than ${MAX_SYMLINK} bytes`);
      return { kind: "symlink", target: e.payload };
    case S_IFIFO:
      noData();
      noRdev();
      return { kind: "fifo" };
    case S_IFSOCK:
      noData();
      noRdev();
      return { kind: "socket" };
    case S_IFCHR:
      noData();
      return { kind: "chardev", rdev: e.rdev };
    case S_IFBLK:
      noData();
      return { kind: "blockdev", rdev: e.rdev };
    default:
      throw new Error(`unknown file type in mode ${e.mode.toString(8)}`);
  }
}

/** Options of the dumpfile → tree conversion. */
export interface BuildOptions {
  /** Hash of object paths in PAYLOAD fields without a DIGEST (default: inferred from the length). */
  alg?: HashAlg;
}

/**
 * Assembles a tree from entries in dumpfile order (§5.3 tree construction): the first entry must
 * be `/`, parents must precede children, hardlinks name an earlier leaf.
 */
export class TreeBuilder {
  #root: Directory | null = null;
  #leaves = new Map<ByteString, Leaf>();
  /** Directories by path ("" is the root), so a parent is found without walking. */
  #dirs = new Map<ByteString, Directory>();
  #alg: HashAlg | undefined;

  constructor(opts: BuildOptions = {}) {
    this.#alg = opts.alg;
  }

  /** Adds one entry. */
  add(e: DumpEntry): void {
    if (e.path === "/") {
      if (e.hardlink || (e.mode & S_IFMT) !== S_IFDIR) throw new Error("the root / must be a directory");
      if (this.#root === null) {
        this.#root = new Directory(statOf(e));
        this.#dirs.set("", this.#root);
      } else this.#root.stat = statOf(e);
      return;
    }
    if (this.#root === null) throw new Error("the first entry must be the root directory /");
    const cut = e.path.lastIndexOf("/");
    const parent = this.#dirs.get(e.path.slice(0, cut));
    if (parent === undefined) throw new Error(`parent directory of ${JSON.stringify(utf8(e.path))} does not exist`);
    const name = e.path.slice(cut + 1);
    if (this.#dirs.has(e.path)) this.#forgetDir(e.path);
    if (e.hardlink) {
      const target = this.#leaves.get(e.payload!);
      if (target === undefined) {
        throw new Error(`hardlink target ${JSON.stringify(utf8(e.payload!))} is not an earlier file`);
      }
      if (target.isWhiteout) throw new Error("a whiteout cannot be hardlinked");
      parent.set(name, target);
      this.#leaves.set(e.path, target);
      return;
    }
    if ((e.mode & S_IFMT) === S_IFDIR) {
      if (e.content !== null || e.digest !== null || e.rdev !== 0) {
        throw new Error("content, digest or rdev given for a directory");
      }
      const dir = new Directory(statOf(e));
      parent.set(name, dir);
      this.#dirs.set(e.path, dir);
      this.#leaves.delete(e.path);
      return;
    }
    const leaf = new Leaf(statOf(e), leafContent(e, this.#alg));
    if (leaf.isWhiteout && (e.nlink ?? 1) > 1) throw new Error("a whiteout cannot be hardlinked");
    parent.set(name, leaf);
    this.#leaves.set(e.path, leaf);
  }

  /** A directory path was replaced: it and everything below it can no longer be a parent. */
  #forgetDir(path: ByteString): void {
    const prefix = path + "/";
    for (const p of [...this.#dirs.keys()]) if (p === path || p.startsWith(prefix)) this.#dirs.delete(p);
  }

  /** The finished tree; throws if no root was given. */
  finish(): Directory {
    if (this.#root === null) throw new Error("the dumpfile is empty (no root directory)");
    return this.#root;
  }
}

function lineError(lineNo: number, e: unknown): Error {
  return new Error(`line ${lineNo}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

/** Feeds dumpfile lines (byte strings) into a builder; blank lines are skipped, a trailing `\r` dropped. */
export class DumpfileParser {
  #builder: TreeBuilder;
  #lineNo = 0;

  constructor(opts: BuildOptions = {}) {
    this.#builder = new TreeBuilder(opts);
  }

  /** Parses and adds one line. */
  line(text: string): void {
    this.#lineNo++;
    if (text.endsWith("\r")) text = text.slice(0, -1);
    if (text.trim() === "") return;
    try {
      this.#builder.add(parseLine(text));
    } catch (e) {
      throw lineError(this.#lineNo, e);
    }
  }

  /** The finished tree. */
  finish(): Directory {
    return this.#builder.finish();
  }
}

/**
 * Parses a whole dumpfile held in memory.
 *
 * @example
 * ```ts
 * const root = parseDumpfile(new TextEncoder().encode("/ 0 40755 2 0 0 0 0.0 - - -\n"));
 * ```
 */
export function parseDumpfile(bytes: Uint8Array, opts: BuildOptions = {}): Directory {
  const p = new DumpfileParser(opts);
  // One decode of the whole text: lines and fields are then slices of it, not strings of their own.
  const text = latin1Decode(bytes);
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    p.line(text.slice(start, end));
    start = end + 1;
  }
  return p.finish();
}

/** Parses a dumpfile from a byte stream, line by line, without holding the whole text. */
export async function parseDumpfileStream(
  stream: ReadableStream<Uint8Array>,
  opts: BuildOptions = {},
): Promise<Directory> {
  const p = new DumpfileParser(opts);
  let carry = "";
  for await (const chunk of stream) {
    const text = carry + latin1Decode(chunk);
    const lines = text.split("\n");
    carry = lines.pop()!;
    for (const l of lines) p.line(l);
  }
  if (carry !== "") p.line(carry);
  return p.finish();
}
