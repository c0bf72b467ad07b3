/**
 * The in-memory filesystem tree shared by the EROFS writer/reader and the dumpfile parser/writer
 * (composefs-formats.md §4.3).
 *
 * Names, symlink targets and xattr names are *byte strings*: JS strings whose every char code is
 * one byte (0–255), i.e. latin1-decoded bytes. That keeps arbitrary (non-UTF-8) names exact and
 * makes the plain `<` string comparison the byte order composefs sorts by. Use
 * {@link byteString} / {@link utf8} to convert at the edges.
 *
 * @module
 */
import type { HashAlg } from "../fsverity/digest.ts";
import { charCodes } from "../bytes/mod.ts";

/** A string whose char codes are bytes (0–255); see the module doc. */
export type ByteString = string;

const encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** The byte string of a UTF-8 text (e.g. a path typed by a user). */
export function byteString(text: string): ByteString {
  return latin1Decode(encoder.encode(text));
}

// windows-1252 (what WHATWG calls "latin1") agrees with Latin-1 everywhere except 0x80–0x9f.
const cp1252 = new TextDecoder("windows-1252");

/** Byte string of raw bytes. */
export function latin1Decode(bytes: Uint8Array): ByteString {
  if (bytes.length > 64) {
    // ASCII text (a whole dumpfile, say) decodes fastest as UTF-8. Any other byte shows: it either
    // joins a multi-byte character (a shorter text) or becomes U+FFFD.
    const text = utf8Decoder.decode(bytes);
    if (text.length === bytes.length && !text.includes("\uFFFD")) return text;
  }
  let plain = true;
  for (let i = 0; i < bytes.length; i++) {
    if ((bytes[i] & 0xe0) === 0x80) {
      plain = false;
      break;
    }
  }
  if (plain) return cp1252.decode(bytes);
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += charCodes(bytes.subarray(i, i + 8192));
  }
  return s;
}

/** Raw bytes of a byte string. */
export function latin1Encode(s: ByteString): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** UTF-8 text of a byte string (invalid sequences become U+FFFD); for messages and display. */
export function utf8(s: ByteString): string {
  return utf8Decoder.decode(latin1Encode(s));
}

/** Extended attributes: name (byte string) → value bytes. */
export type Xattrs = Map<ByteString, Uint8Array>;

/** Metadata every node has. Only the permission bits (`& 0o7777`) of `mode` are kept. */
export interface Stat {
  /** Permission bits incl. setuid/setgid/sticky; the file type comes from the node kind. */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch (may be negative). */
  mtimeSec: number;
  /** Nanoseconds, 0 … 999999999. */
  mtimeNsec: number;
  xattrs: Xattrs;
}

/** The xattr map of every stat that has none; it refuses additions, so sharing it is safe. */
class NoXattrs extends Map<ByteString, Uint8Array> {
  override set(name: ByteString): this {
    throw new Error(`cannot add xattr ${JSON.stringify(utf8(name))} to the shared empty set: give the stat a new map`);
  }
}

/**
 * The one empty xattr map. Most nodes have no xattrs, and a map per stat costs about 200 bytes of
 * heap: a large tree shares this one instead.
 */
export const NO_XATTRS: Xattrs = new NoXattrs();

/**
 * A fresh stat; all fields default to 0 and no xattrs. An empty `xattrs` becomes {@link NO_XATTRS}:
 * xattr maps of a stat may be shared, so code that changes a stat's xattrs assigns a new map.
 */
export function newStat(init: Partial<Stat> = {}): Stat {
  return {
    mode: (init.mode ?? 0) & 0o7777,
    uid: init.uid ?? 0,
    gid: init.gid ?? 0,
    mtimeSec: init.mtimeSec ?? 0,
    mtimeNsec: init.mtimeNsec ?? 0,
    xattrs: init.xattrs === undefined || init.xattrs.size === 0 ? NO_XATTRS : init.xattrs,
  };
}

/** A deep copy of a stat (xattr values are shared; they are never mutated in place). */
export function cloneStat(s: Stat): Stat {
  return { ...s, xattrs: new Map(s.xattrs) };
}

/** A content digest together with its algorithm: the object id of an external file. */
export interface ObjectId {
  alg: HashAlg;
  /** 32 (sha256) or 64 (sha512) bytes. */
  digest: Uint8Array;
}

/** What a leaf holds (composefs-formats.md §4.3). */
export type LeafContent =
  /** A regular file stored inside the image. */
  | { kind: "inline"; data: Uint8Array }
  /** A regular file backed by an object whose fs-verity digest is known (metacopy + redirect). */
  | { kind: "external"; id: ObjectId; size: number }
  /** A regular file backed by an object, without a verified digest (redirect only). */
  | { kind: "external-noverity"; id: ObjectId; size: number }
  /** A regular file with a size but no content or backing object. */
  | { kind: "sparse"; size: number }
  | { kind: "symlink"; target: ByteString }
  | { kind: "chardev"; rdev: number }
  | { kind: "blockdev"; rdev: number }
  | { kind: "fifo" }
  | { kind: "socket" };

/**
 * The content of an empty inline file, shared (frozen, and a zero-length array cannot change): a
 * tree has many empty files, and an array of its own costs each about 150 bytes of heap.
 */
export const EMPTY_FILE: LeafContent = Object.freeze({ kind: "inline", data: new Uint8Array(0) });

/** File type bits (`S_IFMT`) of each leaf kind. */
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

/**
 * A non-directory node. The same object placed under several names is a hardlink; its link count
 * is the number of names (see {@link countLinks}).
 */
export class Leaf {
  stat: Stat;
  content: LeafContent;

  constructor(stat: Stat, content: LeafContent) {
    this.stat = stat;
    this.content = content;
  }

  /** `S_IFMT` bits of this leaf. */
  get fileType(): number {
    switch (this.content.kind) {
      case "symlink":
        return S_IFLNK;
      case "chardev":
        return S_IFCHR;
      case "blockdev":
        return S_IFBLK;
      case "fifo":
        return S_IFIFO;
      case "socket":
        return S_IFSOCK;
      default:
        return S_IFREG;
    }
  }

  /** The logical size: file length, symlink target length, 0 for the rest. */
  get size(): number {
    const c = this.content;
    if (c.kind === "inline") return c.data.length;
    if (c.kind === "symlink") return c.target.length;
    if (c.kind === "external" || c.kind === "external-noverity" || c.kind === "sparse") return c.size;
    return 0;
  }

  /** True for an overlay whiteout (character device 0:0). */
  get isWhiteout(): boolean {
    return this.content.kind === "chardev" && this.content.rdev === 0;
  }
}

/** A tree node. */
export type Node = Directory | Leaf;

/** True when `n` is a regular file (a leaf with inline, object-backed or sparse content). */
export function isRegularFile(n: Node | undefined): n is Leaf {
  return n instanceof Leaf && n.fileType === S_IFREG;
}

/** A directory: its stat and entries by name. Entry names never contain `/` or NUL. */
export class Directory {
  stat: Stat;
  #entries = new Map<ByteString, Node>();
  #sorted: ByteString[] | null = [];

  constructor(stat: Stat = newStat({ mode: 0o755 })) {
    this.stat = stat;
  }

  /** Number of entries (without `.` and `..`). */
  get size(): number {
    return this.#entries.size;
  }

  /** The entry called `name`, if any. */
  get(name: ByteString): Node | undefined {
    return this.#entries.get(name);
  }

  /** Adds or replaces the entry `name`. */
  set(name: ByteString, node: Node): void {
    checkName(name);
    if (!this.#entries.has(name)) this.#sorted = null;
    this.#entries.set(name, node);
  }

  /** Removes the entry `name`; returns whether it existed. */
  delete(name: ByteString): boolean {
    const had = this.#entries.delete(name);
    if (had) this.#sorted = null;
    return had;
  }

  /** Removes every entry (an opaque directory in a layer merge). */
  clear(): void {
    this.#entries.clear();
    this.#sorted = [];
  }

  /** Entry names in byte order. The array is cached; do not modify it. */
  names(): readonly ByteString[] {
    if (this.#sorted === null) this.#sorted = [...this.#entries.keys()].sort(compareBytes);
    return this.#sorted;
  }

  /** `[name, node]` pairs in byte order of names. */
  *entries(): IterableIterator<[ByteString, Node]> {
    for (const name of this.names()) yield [name, this.#entries.get(name)!];
  }

  /** Number of subdirectories (directory nlink is 2 + this). */
  subdirCount(): number {
    let n = 0;
    for (const node of this.#entries.values()) if (node instanceof Directory) n++;
    return n;
  }
}

/** Byte-order comparison of byte strings (plain code-unit order, since every unit is a byte). */
export function compareBytes(a: ByteString, b: ByteString): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Lexicographic order of byte arrays (a prefix sorts first). */
export function compareByteArrays(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

function checkName(name: ByteString): void {
  if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
    throw new Error(`invalid file name ${JSON.stringify(utf8(name))}`);
  }
  if (name.length > 255) throw new Error(`file name longer than 255 bytes: ${JSON.stringify(utf8(name))}`);
}

/**
 * Checks that `path` is absolute with no empty, `.` or `..` component (the root `/` is valid),
 * without building the component list (dumpfile parsing checks every path).
 */
export function checkPath(path: ByteString): void {
  if (path.charCodeAt(0) !== 0x2f) throw new Error(`path is not absolute: ${JSON.stringify(utf8(path))}`);
  if (path.length === 1) return;
  for (let start = 1, i = 1; i <= path.length; i++) {
    if (i < path.length && path.charCodeAt(i) !== 0x2f) continue;
    const n = i - start;
    const dots = n <= 2 && path.charCodeAt(start) === 0x2e && (n === 1 || path.charCodeAt(start + 1) === 0x2e);
    if (n === 0 || dots) throw new Error(`invalid path ${JSON.stringify(utf8(path))}`);
    start = i + 1;
  }
}

/** The components of an absolute path (`/` → []); rejects empty, `.` and `..` components. */
export function splitPath(path: ByteString): ByteString[] {
  checkPath(path);
  return path === "/" ? [] : path.slice(1).split("/");
}

/** The node at absolute `path` under `root`, or undefined. */
export function lookup(root: Directory, path: ByteString): Node | undefined {
  let node: Node = root;
  for (const part of splitPath(path)) {
    if (!(node instanceof Directory)) return undefined;
    const next: Node | undefined = node.get(part);
    if (next === undefined) return undefined;
    node = next;
  }
  return node;
}

/**
 * Places `node` at absolute `path`, replacing any entry of that name. The parent must exist
 * unless `createParents` gives the stat for missing parent directories.
 */
export function insert(root: Directory, path: ByteString, node: Node, createParents?: () => Stat): void {
  const parts = splitPath(path);
  if (parts.length === 0) throw new Error("cannot insert at /: the root is fixed");
  let dir = root;
  for (let i = 0; i < parts.length - 1; i++) {
    let next = dir.get(parts[i]);
    if (next === undefined && createParents) {
      next = new Directory(createParents());
      dir.set(parts[i], next);
    }
    if (!(next instanceof Directory)) {
      throw new Error(`parent directory of ${JSON.stringify(utf8(path))} does not exist`);
    }
    dir = next;
  }
  dir.set(parts[parts.length - 1], node);
}

/** Reference count of every leaf (its nlink), over a pre-order walk of the whole tree. */
export function countLinks(root: Directory): Map<Leaf, number> {
  const counts = new Map<Leaf, number>();
  const stack: Directory[] = [root];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    for (const [, node] of dir.entries()) {
      if (node instanceof Directory) stack.push(node);
      else counts.set(node, (counts.get(node) ?? 0) + 1);
    }
  }
  return counts;
}

/**
 * Visits every node in pre-order, children in byte order, as `[path, node, parent]` (the root's
 * parent is itself). A hardlinked leaf is visited once per name. Iterative, so deep trees do not
 * overflow the stack.
 */
export function* walk(root: Directory): IterableIterator<[ByteString, Node, Directory]> {
  yield ["/", root, root];
  const stack: Array<[ByteString, Directory, IterableIterator<[ByteString, Node]>]> = [["", root, root.entries()]];
  while (stack.length > 0) {
    const [prefix, dir, it] = stack[stack.length - 1];
    const next = it.next();
    if (next.done) {
      stack.pop();
      continue;
    }
    const [name, node] = next.value;
    const path = `${prefix}/${name}`;
    yield [path, node, dir];
    if (node instanceof Directory) stack.push([path, node, node.entries()]);
  }
}
