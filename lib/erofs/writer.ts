/**
 * composefs EROFS image writer (composefs-formats.md §4.4–§4.7): V0/V1 byte-identical to C
 * mkcomposefs 1.0.8, and composefs-rs's V2. Pure: a tree in, image bytes out.
 *
 * @module
 */
import { DIGEST_SIZE } from "../fsverity/digest.ts";
import { objectPath } from "../dumpfile/write.ts";
import {
  type ByteString,
  compareBytes,
  countLinks,
  Directory,
  latin1Decode,
  Leaf,
  type Node,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFREG,
  S_IFSOCK,
  type Stat,
  walk,
} from "../tree/tree.ts";
import {
  BLOCK_SIZE,
  chunkBits,
  COMPOSEFS_MAGIC,
  EROFS_MAGIC,
  FEATURE_COMPAT_MTIME,
  FEATURE_COMPAT_XATTR_FILTER,
  type FormatVersion,
  FT,
  HEADER_FLAG_HAS_ACL,
  INODES_START,
  LAYOUT_CHUNK_BASED,
  LAYOUT_FLAT_INLINE,
  LAYOUT_FLAT_PLAIN,
  metacopyValue,
  OVERLAY_ESCAPED_PREFIX,
  OVERLAY_PREFIX,
  roundUp,
  splitXattrName,
  SUPERBLOCK_OFFSET,
  XATTR_ESCAPED_OPAQUE,
  XATTR_ESCAPED_WHITEOUT,
  XATTR_ESCAPED_WHITEOUTS,
  XATTR_FILTER_SEED,
  XATTR_METACOPY,
  XATTR_OPAQUE,
  XATTR_REDIRECT,
  XATTR_USER_OPAQUE,
  XATTR_USER_WHITEOUT,
  XATTR_USER_WHITEOUTS,
  xxh32,
} from "./format.ts";
import { charCodes } from "../bytes/mod.ts";

/** Options of {@link writeImage}. */
export interface WriteOptions {
  /** Format version to write (default 1). See {@link chooseVersion} for C's min/max rule. */
  version?: FormatVersion;
}

/** C mkcomposefs keeps at most this many shared xattr references per inode. */
const MAX_SHARED_PER_INODE = 128;
// Shared by the inodes without xattrs / leaves (frozen: nothing may be added to them).
const NO_XATTRS: Xattr[] = Object.freeze([]) as unknown as Xattr[];
const NO_DIRENTS: Dirent[] = Object.freeze([]) as unknown as Dirent[];
// C sets HAS_ACL for these exact names only.
const ACL_ACCESS = "system.posix_acl_access";
const ACL_DEFAULT = "system.posix_acl_default";

/**
 * One distinct xattr (name and value) of the image, shared by every inode that has it. Values are
 * byte strings: a per-file metacopy or redirect value costs a few dozen bytes of heap that way,
 * rather than a buffer (several hundred), and is its own key in {@link XattrTable}.
 */
interface Xattr {
  name: ByteString;
  value: ByteString;
  prefix: number;
  suffix: ByteString;
  /** Number of inodes that have it. */
  count: number;
  /** Index into the shared table, or -1 when every inode stores it inline. */
  index: number;
}

interface Dirent {
  name: ByteString;
  ino: Ino;
}

/** One inode being written. */
interface Ino {
  node: Node;
  index: number;
  type: number;
  stat: Stat;
  nlink: number;
  xattrs: Xattr[];
  dirents: Dirent[];
  dirSplit: DirSplit | null;
  layout: number;
  size: number;
  nblocks: number;
  tail: number;
  chunkFormat: number;
  chunkCount: number;
  promoted: boolean;
  compact: boolean;
  xattrSize: number;
  offset: number;
  blkaddr: number;
}

function newIno(node: Node, index: number, nlink: number, type: number): Ino {
  return {
    node,
    index,
    type,
    stat: node.stat,
    nlink,
    xattrs: NO_XATTRS,
    dirents: type === S_IFDIR ? [] : NO_DIRENTS,
    dirSplit: null,
    layout: LAYOUT_FLAT_PLAIN,
    size: 0,
    nblocks: 0,
    tail: 0,
    chunkFormat: 0,
    chunkCount: 0,
    promoted: false,
    compact: false,
    xattrSize: 0,
    offset: 0,
    blkaddr: 0,
  };
}

/**
 * The format version C mkcomposefs picks for `--min-version`/`--max-version`: `min`, raised to
 * 1 (if `max` allows) when the tree contains a whiteout (character device 0:0).
 */
export function chooseVersion(root: Directory, min: FormatVersion, max: FormatVersion): FormatVersion {
  if (min >= 1 || max < 1) return min;
  const stack: Directory[] = [root];
  while (stack.length > 0) {
    for (const [, node] of stack.pop()!.entries()) {
      if (node instanceof Directory) stack.push(node);
      else if (node.isWhiteout) return 1;
    }
  }
  return min;
}

const DIRENT_TYPES = new Map<number, number>([
  [S_IFDIR, FT.dir],
  [S_IFLNK, FT.symlink],
  [S_IFCHR, FT.chr],
  [S_IFBLK, FT.blk],
  [S_IFIFO, FT.fifo],
  [S_IFSOCK, FT.sock],
]);

const byName = (a: Dirent, b: Dirent) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

function direntType(ino: Ino): number {
  return DIRENT_TYPES.get(ino.type) ?? FT.reg;
}

/**
 * The distinct xattrs of the image being written, by name and then value (no name + value key
 * strings: per-file values are unique, so a key would double their size).
 */
class XattrTable {
  /** Per name, split once (a per-file value must not cost a suffix string of its own). */
  #byName = new Map<ByteString, { prefix: number; suffix: ByteString; values: Map<ByteString, Xattr> }>();
  #version: FormatVersion;

  constructor(version: FormatVersion) {
    this.#version = version;
  }

  /** Gives `ino` the xattr `name` = `value`, replacing any value it had for `name`. */
  set(ino: Ino, name: ByteString, value: ByteString): void {
    let group = this.#byName.get(name);
    if (group === undefined) {
      const [prefix, suffix] = splitXattrName(name, this.#version);
      this.#byName.set(name, group = { prefix, suffix, values: new Map() });
    }
    let x = group.values.get(value);
    if (x === undefined) {
      group.values.set(value, x = { name, value, prefix: group.prefix, suffix: group.suffix, count: 0, index: -1 });
    }
    x.count++;
    if (ino.xattrs === NO_XATTRS) ino.xattrs = [];
    const i = ino.xattrs.findIndex((old) => old.name === name);
    if (i < 0) ino.xattrs.push(x);
    else {
      ino.xattrs[i].count--;
      ino.xattrs[i] = x;
    }
  }

  /** Every xattr some inode has. */
  *[Symbol.iterator](): IterableIterator<Xattr> {
    for (const { values } of this.#byName.values()) for (const x of values.values()) if (x.count > 0) yield x;
  }
}

/** Writer xattrs of a leaf's content (metacopy/redirect), skipped for empty files in V0/V1. */
function contentXattrs(leaf: Leaf, into: Ino, version: FormatVersion, xattrs: XattrTable): void {
  const c = leaf.content;
  if (c.kind !== "external" && c.kind !== "external-noverity" && c.kind !== "sparse") return;
  if (version !== 2 && c.size === 0) return;
  // A metacopy value is a few dozen bytes: char codes straight into a string, no decoder call.
  xattrs.set(
    into,
    XATTR_METACOPY,
    c.kind === "external" ? charCodes(metacopyValue(c.id.alg, c.id.digest)) : "",
  );
  if (c.kind !== "sparse") {
    if (c.id.digest.length !== DIGEST_SIZE[c.id.alg]) throw new Error("object id has the wrong digest length");
    xattrs.set(into, XATTR_REDIRECT, "/" + objectPath(c.id.digest));
  }
}

/** Stat xattrs in name order, with `trusted.overlay.*` escaped one level. */
function statXattrs(stat: Stat, into: Ino, xattrs: XattrTable): void {
  if (stat.xattrs.size === 0) return;
  const names = [...stat.xattrs.keys()].sort();
  for (const name of names) {
    const escaped = name.startsWith(OVERLAY_PREFIX) ? OVERLAY_ESCAPED_PREFIX + name.slice(OVERLAY_PREFIX.length) : name;
    xattrs.set(into, escaped, latin1Decode(stat.xattrs.get(name)!));
  }
}

/** Per-inode order of V0/V1: full name, then value length, then value bytes. */
function compareXattrC(a: Xattr, b: Xattr): number {
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  if (a.value.length !== b.value.length) return a.value.length - b.value.length;
  return compareBytes(a.value, b.value);
}

/** Shared-table order of V2: prefix index, suffix, value. */
function compareXattrV2(a: Xattr, b: Xattr): number {
  if (a.prefix !== b.prefix) return a.prefix - b.prefix;
  if (a.suffix !== b.suffix) return a.suffix < b.suffix ? -1 : 1;
  return compareBytes(a.value, b.value);
}

function entrySize(x: Xattr): number {
  return roundUp(4 + x.suffix.length + x.value.length, 4);
}

/** Directory blocks: `[start, end)` entry ranges of the full blocks, then the inline tail range. */
interface DirSplit {
  blocks: Array<[number, number]>;
  tail: [number, number];
}

function splitDirents(ino: Ino): DirSplit {
  const blocks: Array<[number, number]> = [];
  let used = 0, first = 0;
  const d = ino.dirents;
  for (let i = 0; i < d.length; i++) {
    const len = 12 + d[i].name.length;
    if (used + len > BLOCK_SIZE) {
      blocks.push([first, i]);
      first = i;
      used = 0;
    }
    used += len;
  }
  if (used > BLOCK_SIZE / 2) {
    blocks.push([first, d.length]);
    first = d.length;
    used = 0;
  }
  ino.nblocks = blocks.length;
  ino.tail = used;
  ino.dirSplit = { blocks, tail: [first, d.length] };
  return ino.dirSplit;
}

/** Creates inodes in index order with the writer and (escaped) stat xattrs of their node. */
function allocator(
  inodes: Ino[],
  version: FormatVersion,
  xattrs: XattrTable,
): (node: Node, type: number, nlink: number) => Ino {
  return (node, type, nlink) => {
    const ino = newIno(node, inodes.length, nlink, type);
    if (node instanceof Leaf) contentXattrs(node, ino, version, xattrs);
    statXattrs(node.stat, ino, xattrs);
    inodes.push(ino);
    return ino;
  };
}

/** Tree → inode list, V0/V1 (BFS with stubs, hardlink canonical dirs, whiteout escaping). */
function collectV1(root: Directory, version: FormatVersion, xattrs: XattrTable): Ino[] {
  const links = countLinks(root);
  const rootSelinux = root.stat.xattrs.get("security.selinux");
  const stubs = new Set<Leaf>();
  const rootEntries = new Map<ByteString, Node>(root.entries());
  for (let i = 0; i < 256; i++) {
    const name = (i < 16 ? "0" : "") + i.toString(16);
    if (rootEntries.has(name)) continue;
    const xattrs = new Map<ByteString, Uint8Array>();
    if (rootSelinux !== undefined) xattrs.set("security.selinux", rootSelinux);
    const st = { ...root.stat, mode: 0o644, xattrs };
    const stub = new Leaf(st, { kind: "chardev", rdev: 0 });
    stubs.add(stub);
    rootEntries.set(name, stub);
  }
  const rootNames = [...rootEntries.keys()].sort();
  const childrenOf = (d: Directory): Iterable<[ByteString, Node]> =>
    d === root ? rootNames.map((n) => [n, rootEntries.get(n)!] as [ByteString, Node]) : d.entries();

  let hardlinks = false;
  for (const [leaf, n] of links) {
    if (n > 1 && leaf.isWhiteout) throw new Error("a whiteout (character device 0:0) cannot be hardlinked");
    hardlinks ||= n > 1;
  }

  // The directory of the first occurrence (sorted DFS) of every hardlinked leaf. The stubs are
  // not hardlinked, so walking the caller's tree is enough.
  const canonical = new Map<Leaf, Directory>();
  for (const [, node, parent] of hardlinks ? walk(root) : []) {
    if (node instanceof Leaf && (links.get(node) ?? 1) > 1 && !canonical.has(node)) canonical.set(node, parent);
  }

  const inodes: Ino[] = [];
  const allocated = new Map<Leaf, Ino>();
  const escaped = new Set<Ino>();
  const deferred: Array<[Dirent, Leaf]> = [];
  const alloc = allocator(inodes, version, xattrs);
  const rootIno = alloc(root, S_IFDIR, 2 + root.subdirCount());
  const queue: Array<[Ino, Ino]> = [[rootIno, rootIno]];
  for (let q = 0; q < queue.length; q++) {
    const [d, parent] = queue[q];
    const dir = d.node as Directory;
    d.dirents.push({ name: ".", ino: d }, { name: "..", ino: parent });
    let hasWhiteout = false;
    for (const [name, node] of childrenOf(dir)) {
      if (node instanceof Directory) {
        const sub = alloc(node, S_IFDIR, 2 + node.subdirCount());
        queue.push([sub, d]);
        d.dirents.push({ name, ino: sub });
        continue;
      }
      const nlink = links.get(node) ?? 1;
      const isCanonical = nlink === 1 || canonical.get(node) === dir;
      // Only a hardlinked leaf is met again, so only those are remembered (a map entry per leaf adds up).
      let ino = nlink > 1 ? allocated.get(node) : undefined;
      if (ino === undefined && isCanonical) {
        ino = alloc(node, node.fileType, nlink);
        if (nlink > 1) allocated.set(node, ino);
      }
      if (ino === undefined) {
        const dirent = { name, ino: d };
        deferred.push([dirent, node]);
        d.dirents.push(dirent);
        continue;
      }
      d.dirents.push({ name, ino });
      if (isCanonical && node.isWhiteout && !stubs.has(node) && !escaped.has(ino)) {
        escaped.add(ino);
        ino.type = S_IFREG;
        xattrs.set(ino, XATTR_ESCAPED_WHITEOUT, "");
        xattrs.set(ino, XATTR_USER_WHITEOUT, "");
        hasWhiteout = true;
      }
    }
    if (hasWhiteout) {
      xattrs.set(d, XATTR_ESCAPED_WHITEOUTS, "");
      xattrs.set(d, XATTR_USER_WHITEOUTS, "");
      if (version === 1) {
        xattrs.set(d, XATTR_ESCAPED_OPAQUE, "x");
        xattrs.set(d, XATTR_USER_OPAQUE, "x");
      }
    }
    d.dirents.sort(byName);
  }
  for (const [dirent, leaf] of deferred) {
    const ino = allocated.get(leaf);
    if (ino === undefined) throw new Error("internal error: hardlink target was never allocated");
    dirent.ino = ino;
  }
  xattrs.set(rootIno, XATTR_OPAQUE, "y");
  return inodes;
}

/** Tree → inode list, V2 (DFS pre-order, no stubs or whiteout escaping). */
function collectV2(root: Directory, xattrs: XattrTable): Ino[] {
  const links = countLinks(root);
  const inodes: Ino[] = [];
  const allocated = new Map<Leaf, Ino>();
  const alloc = allocator(inodes, 2, xattrs);
  const dirInos = new Map<Directory, Ino>();
  for (const [name, node, parent] of walk(root)) {
    if (node instanceof Directory) {
      const ino = alloc(node, S_IFDIR, 2 + node.subdirCount());
      const up = dirInos.get(parent) ?? ino;
      dirInos.set(node, ino);
      ino.dirents.push({ name: ".", ino }, { name: "..", ino: up });
      if (node !== root) up.dirents.push({ name: name.slice(name.lastIndexOf("/") + 1), ino });
      continue;
    }
    const nlink = links.get(node) ?? 1;
    let ino = nlink > 1 ? allocated.get(node) : undefined;
    if (ino === undefined) {
      ino = alloc(node, node.fileType, nlink);
      if (nlink > 1) allocated.set(node, ino);
    }
    dirInos.get(parent)!.dirents.push({ name: name.slice(name.lastIndexOf("/") + 1), ino });
  }
  for (const ino of dirInos.values()) ino.dirents.sort(byName);
  return inodes;
}

/** Sorts every inode's xattrs (V0/V1), returns the shared table (V0/V1 or V2 rules) and sizes each inode's xattrs. */
function shareXattrs(inodes: Ino[], xattrs: XattrTable, version: FormatVersion): Xattr[] {
  if (version !== 2) { for (const ino of inodes) if (ino.xattrs.length > 1) ino.xattrs.sort(compareXattrC); }
  const table = [...xattrs].filter((x) => x.count > 1);
  if (version === 2) table.sort(compareXattrV2);
  else table.sort((a, b) => compareXattrC(b, a));
  table.forEach((x, i) => (x.index = i));
  for (const ino of inodes) {
    const shared = sharedFlags(ino, version);
    let size = 0;
    ino.xattrs.forEach((x, i) => (size += shared[i] ? 4 : entrySize(x)));
    ino.xattrSize = ino.xattrs.length === 0 ? 0 : 12 + size;
  }
  return table;
}

/** Which of an inode's xattrs refer to the shared table: those in it, at most 128 per inode in V0/V1 (as C). */
function sharedFlags(ino: Ino, version: FormatVersion): boolean[] {
  const flags: boolean[] = [];
  let n = 0;
  for (const x of ino.xattrs) {
    const shared = x.index >= 0 && (version === 2 || n < MAX_SHARED_PER_INODE);
    if (shared) n++;
    flags.push(shared);
  }
  return flags;
}

/** Unsigned 64-bit order of (sec, nsec), as C compares `st_mtim`. */
function compareMtime(aSec: number, aNsec: number, bSec: number, bNsec: number): number {
  if (aSec !== bSec) {
    if (aSec < 0 !== bSec < 0) return aSec < 0 ? 1 : -1;
    return aSec - bSec;
  }
  return aNsec - bNsec;
}

/** Sizes, layouts and the compact decision of every inode (§4.4 steps 7–10 / §4.7). */
function sizeInodes(inodes: Ino[], version: FormatVersion): [number, number] {
  let minSec = inodes[0].stat.mtimeSec, minNsec = inodes[0].stat.mtimeNsec;
  for (const ino of inodes) {
    if (compareMtime(ino.stat.mtimeSec, ino.stat.mtimeNsec, minSec, minNsec) < 0) {
      minSec = ino.stat.mtimeSec;
      minNsec = ino.stat.mtimeNsec;
    }
  }
  for (const ino of inodes) {
    const node = ino.node;
    if (node instanceof Directory) {
      splitDirents(ino);
      ino.size = ino.nblocks * BLOCK_SIZE + ino.tail;
      ino.layout = ino.tail > 0 ? LAYOUT_FLAT_INLINE : LAYOUT_FLAT_PLAIN;
    } else if (ino.type === S_IFREG) {
      const c = node.content;
      if (c.kind === "inline") {
        ino.size = c.data.length;
        if (version === 2 && c.data.length >= BLOCK_SIZE) {
          throw new Error(`an inline file of ${c.data.length} bytes does not fit in a V2 image (limit 4095)`);
        }
        if (version === 2) ino.tail = c.data.length;
        else if (c.data.length > 0) {
          ino.nblocks = Math.floor(c.data.length / BLOCK_SIZE);
          ino.tail = c.data.length % BLOCK_SIZE;
          if (ino.tail > BLOCK_SIZE / 2) {
            ino.nblocks++;
            ino.tail = 0;
          }
        }
        ino.layout = ino.tail > 0 ? LAYOUT_FLAT_INLINE : LAYOUT_FLAT_PLAIN;
      } else if (c.kind === "external" || c.kind === "external-noverity" || c.kind === "sparse") {
        ino.size = c.size;
        if (version === 2) {
          ino.layout = LAYOUT_CHUNK_BASED;
          ino.chunkFormat = 31;
          ino.chunkCount = c.kind === "external" ? 1 : 0;
          ino.tail = 4 * ino.chunkCount;
        } else if (c.size > 0) {
          const bits = chunkBits(c.size);
          ino.layout = LAYOUT_CHUNK_BASED;
          ino.chunkFormat = bits - 12;
          ino.chunkCount = Math.ceil(c.size / 2 ** bits);
          if (ino.chunkCount > 1024) throw new Error(`file of ${c.size} bytes is too large for a composefs image`);
          ino.tail = 4 * ino.chunkCount;
        }
      }
    } else if (ino.type === S_IFLNK) {
      const target = (node.content as { target: ByteString }).target;
      if (target.length === 0 || target.length >= BLOCK_SIZE) {
        throw new Error(`symlink target of ${target.length} bytes (must be 1 to 4095)`);
      }
      ino.size = target.length;
      ino.tail = target.length;
      ino.layout = LAYOUT_FLAT_INLINE;
    }
    const st = ino.stat;
    if (st.uid > 0xffffffff || st.gid > 0xffffffff || st.uid < 0 || st.gid < 0) {
      throw new Error(`uid/gid ${st.uid}/${st.gid} out of range`);
    }
    ino.compact = version !== 2 && st.mtimeSec === minSec && st.mtimeNsec === minNsec && ino.nlink <= 0xffff &&
      st.uid <= 0xffff && st.gid <= 0xffff && ino.size <= 0xffffffff;
    if (version === 2) continue;
    const header = ino.compact ? 32 : 64;
    if (ino.type === S_IFLNK && header + ino.xattrSize + ino.tail >= BLOCK_SIZE) {
      ino.nblocks = 1;
      ino.tail = 0;
      ino.promoted = true;
      ino.layout = LAYOUT_FLAT_PLAIN;
    } else if (ino.layout === LAYOUT_CHUNK_BASED && ino.tail + (ino.xattrSize % 32) > BLOCK_SIZE) {
      ino.nblocks = 1;
      ino.tail = 0;
      ino.promoted = true;
    }
  }
  return [minSec, minNsec];
}

/** Padding before an inode at `pos` so that its inline tail does not cross a block (§4.6, §4.7). */
function placeInode(ino: Ino, pos: number, version: FormatVersion): number {
  pos = roundUp(pos, 32);
  const header = ino.compact ? 32 : 64;
  const nonTail = header + ino.xattrSize;
  if (version === 2) {
    if (ino.layout !== LAYOUT_FLAT_INLINE) return pos;
    const s = pos + nonTail, e = s - 1, end = s + (ino.size % BLOCK_SIZE);
    if (Math.floor(e / BLOCK_SIZE) !== Math.floor(end / BLOCK_SIZE)) {
      pos = roundUp(pos + BLOCK_SIZE - (e % BLOCK_SIZE), 32);
    }
    return pos;
  }
  if (ino.type === S_IFLNK) {
    const total = nonTail + ino.size;
    if (Math.floor(pos / BLOCK_SIZE) !== Math.floor((pos + total - 1) / BLOCK_SIZE)) pos = roundUp(pos, BLOCK_SIZE);
    return pos;
  }
  if (ino.promoted) return roundUp(pos, BLOCK_SIZE);
  if (ino.tail > 0) {
    const s = pos + nonTail;
    const r = BLOCK_SIZE - (s % BLOCK_SIZE);
    if (s % BLOCK_SIZE !== 0 && r < ino.tail) pos += roundUp(r, 32);
  }
  return pos;
}

/** Bytes written by {@link writeImageTo}'s sink calls at most this large (the image is never held whole). */
const WINDOW = 1 << 20;

/**
 * The image's bytes, kept only from `base` on: every write goes at or after the start of the last
 * {@link reserve}d range (the writer lays out everything in ascending order), so what comes before
 * it is final and goes to the sink. Offsets are absolute.
 */
class Out {
  #sink: (chunk: Uint8Array) => void;
  #size: number;
  #base = 0;
  #buf: Uint8Array;
  #view: DataView;

  constructor(size: number, window: number, sink: (chunk: Uint8Array) => void) {
    this.#size = size;
    this.#sink = sink;
    this.#buf = new Uint8Array(Math.min(size, window));
    this.#view = new DataView(this.#buf.buffer);
  }

  /** Makes `[start, start + len)` writable, sending what lies before `start` when it is not. */
  reserve(start: number, len: number): void {
    const end = this.#base + this.#buf.length;
    if (start + len <= end) return;
    if (start < this.#base) throw new Error("internal error: EROFS image written out of order");
    // Nothing was written at or after `start` yet: the window moves on to it, zeroed (the padding),
    // sending zeros for any gap beyond its end.
    while (this.#base < start) {
      const n = Math.min(start - this.#base, this.#buf.length);
      this.#sink(this.#buf.subarray(0, n));
      this.#buf.fill(0, 0, n);
      this.#base += n;
    }
    if (len > this.#buf.length) {
      this.#buf = new Uint8Array(len);
      this.#view = new DataView(this.#buf.buffer);
    }
  }

  /** Sends the rest of the image (zero-filled to its size). */
  finish(): void {
    this.reserve(this.#size, 0);
    if (this.#size > this.#base) this.#sink(this.#buf.subarray(0, this.#size - this.#base));
  }

  u8(o: number, v: number) {
    this.#buf[o - this.#base] = v;
  }
  u16(o: number, v: number) {
    this.#view.setUint16(o - this.#base, v, true);
  }
  u32(o: number, v: number) {
    this.#view.setUint32(o - this.#base, v >>> 0, true);
  }
  u64(o: number, v: number) {
    this.#view.setBigUint64(o - this.#base, BigInt.asUintN(64, BigInt(v)), true);
  }
  str(o: number, s: ByteString): number {
    const b = this.#buf, at = o - this.#base;
    for (let i = 0; i < s.length; i++) b[at + i] = s.charCodeAt(i);
    return o + s.length;
  }
  bytes(o: number, data: Uint8Array): void {
    this.#buf.set(data, o - this.#base);
  }
  fill(v: number, start: number, end: number): void {
    this.#buf.fill(v, start - this.#base, end - this.#base);
  }
}

function writeXattrEntry(out: Out, o: number, x: Xattr): number {
  out.u8(o, x.suffix.length);
  out.u8(o + 1, x.prefix);
  out.u16(o + 2, x.value.length);
  o = out.str(out.str(o + 4, x.suffix), x.value);
  return roundUp(o, 4);
}

function writeDirents(out: Out, o: number, d: Dirent[], start: number, end: number): void {
  let nameoff = (end - start) * 12;
  let p = o + nameoff;
  for (let i = start; i < end; i++) {
    const e = o + (i - start) * 12;
    out.u64(e, d[i].ino.offset / 32);
    out.u16(e + 8, nameoff);
    out.u8(e + 10, direntType(d[i].ino));
    nameoff += d[i].name.length;
    p = out.str(p, d[i].name);
  }
}

function iU(ino: Ino): number {
  const c = (ino.node as Leaf).content;
  if (ino.layout === LAYOUT_CHUNK_BASED) {
    return ino.promoted ? ((ino.blkaddr & 0xffff0000) | ino.chunkFormat) >>> 0 : ino.chunkFormat;
  }
  if (ino.type === S_IFCHR || ino.type === S_IFBLK) return (c as { rdev: number }).rdev % 2 ** 32;
  return ino.nblocks > 0 ? ino.blkaddr : 0;
}

function writeInode(out: Out, ino: Ino, version: FormatVersion, xattrBase: number, tableOffsets: number[]): void {
  let o = ino.offset;
  out.reserve(o, (ino.compact ? 32 : 64) + ino.xattrSize + ino.tail);
  const st = ino.stat;
  const format = (ino.layout << 1) | (ino.compact ? 0 : 1);
  const icount = ino.xattrSize === 0 ? 0 : (ino.xattrSize - 12) / 4 + 1;
  const mode = ino.type | (st.mode & 0o7777);
  const inoNum = version === 2 ? ino.offset / 32 : ino.index;
  out.u16(o, format);
  out.u16(o + 2, icount);
  out.u16(o + 4, mode);
  out.u32(o + 16, iU(ino));
  out.u32(o + 20, inoNum);
  if (ino.compact) {
    out.u16(o + 6, ino.nlink);
    out.u32(o + 8, ino.size);
    out.u16(o + 24, st.uid);
    out.u16(o + 26, st.gid);
    o += 32;
  } else {
    out.u64(o + 8, ino.size);
    out.u32(o + 24, st.uid);
    out.u32(o + 28, st.gid);
    out.u64(o + 32, st.mtimeSec);
    out.u32(o + 40, version === 2 ? 0 : st.mtimeNsec);
    out.u32(o + 44, ino.nlink);
    o += 64;
  }
  if (ino.xattrSize > 0) {
    let filter = 0;
    for (const x of ino.xattrs) filter |= 1 << (xxh32(x.suffix, XATTR_FILTER_SEED + x.prefix) & 31);
    out.u32(o, ~filter);
    const flags = sharedFlags(ino, version);
    const shared = ino.xattrs.filter((_, i) => flags[i]);
    out.u8(o + 4, Math.min(shared.length, 255));
    o += 12;
    for (const x of shared) {
      out.u32(o, (tableOffsets[x.index] - xattrBase) / 4);
      o += 4;
    }
    for (let i = 0; i < ino.xattrs.length; i++) if (!flags[i]) o = writeXattrEntry(out, o, ino.xattrs[i]);
  }
  const node = ino.node;
  if (node instanceof Directory) {
    if (ino.tail > 0) {
      const [s, e] = ino.dirSplit!.tail;
      writeDirents(out, o, ino.dirents, s, e);
    }
    return;
  }
  const c = node.content;
  if (ino.tail === 0) return;
  if (c.kind === "inline") out.bytes(o, c.data.subarray(c.data.length - ino.tail));
  else if (c.kind === "symlink") out.str(o, c.target);
  else if (ino.layout === LAYOUT_CHUNK_BASED) out.fill(0xff, o, o + 4 * ino.chunkCount);
}

function writeBlocks(out: Out, ino: Ino): void {
  const start = ino.blkaddr * BLOCK_SIZE;
  out.reserve(start, ino.nblocks * BLOCK_SIZE);
  const node = ino.node;
  if (node instanceof Directory) {
    ino.dirSplit!.blocks.forEach(([s, e], i) => writeDirents(out, start + i * BLOCK_SIZE, ino.dirents, s, e));
    return;
  }
  const c = node.content;
  if (c.kind === "inline") out.bytes(start, c.data.subarray(0, c.data.length - ino.tail));
  else if (c.kind === "symlink") out.str(start, c.target);
  // A chunk index moved out of the inode fills its whole block with 0xff, whatever the chunk count (as C).
  else if (ino.layout === LAYOUT_CHUNK_BASED) out.fill(0xff, start, start + BLOCK_SIZE);
}

/**
 * Writes the composefs EROFS image of a tree. The tree is not modified.
 *
 * @example
 * ```ts
 * const root = parseDumpfile(bytes);
 * const image = writeImage(root, { version: chooseVersion(root, 0, 1) });
 * ```
 */
export function writeImage(root: Directory, opts: WriteOptions = {}): Uint8Array {
  let image: Uint8Array = new Uint8Array(0);
  emitImage(root, opts, Infinity, (whole) => image = whole);
  return image;
}

/**
 * {@link writeImage}, with the image handed to `sink` in order, in chunks of at most about 1 MiB
 * that are only valid until `sink` returns: the image is never in memory whole.
 */
export function writeImageTo(root: Directory, sink: (chunk: Uint8Array) => void, opts: WriteOptions = {}): void {
  emitImage(root, opts, WINDOW, sink);
}

function emitImage(root: Directory, opts: WriteOptions, window: number, sink: (chunk: Uint8Array) => void): void {
  const version = opts.version ?? 1;
  const xattrs = new XattrTable(version);
  const inodes = version === 2 ? collectV2(root, xattrs) : collectV1(root, version, xattrs);
  const table = shareXattrs(inodes, xattrs, version);
  const [minSec, minNsec] = sizeInodes(inodes, version);

  let pos = INODES_START;
  for (const ino of inodes) {
    ino.offset = placeInode(ino, pos, version);
    pos = ino.offset + (ino.compact ? 32 : 64) + ino.xattrSize + ino.tail;
  }
  const inodesEnd = roundUp(pos, 32);
  const tableOffsets: number[] = [];
  pos = inodesEnd;
  for (const x of table) {
    tableOffsets.push(pos);
    pos += entrySize(x);
  }
  let block = roundUp(pos, BLOCK_SIZE) / BLOCK_SIZE;
  for (const ino of inodes) {
    if (ino.nblocks === 0) continue;
    ino.blkaddr = block;
    block += ino.nblocks;
  }
  if (inodes[0].offset / 32 > 0xffff) throw new Error("root inode is beyond the reach of the superblock");
  const out = new Out(block * BLOCK_SIZE, window, sink);
  out.reserve(0, INODES_START);
  const xattrBlk = version === 2 ? 0 : Math.floor(inodesEnd / BLOCK_SIZE);

  out.u32(0, COMPOSEFS_MAGIC);
  out.u32(4, 1);
  if (version !== 2 && inodes.some((i) => i.xattrs.some((x) => x.name === ACL_ACCESS || x.name === ACL_DEFAULT))) {
    out.u32(8, HEADER_FLAG_HAS_ACL);
  }
  out.u32(12, version);
  const sb = SUPERBLOCK_OFFSET;
  out.u32(sb, EROFS_MAGIC);
  out.u32(sb + 8, FEATURE_COMPAT_MTIME | FEATURE_COMPAT_XATTR_FILTER);
  out.u8(sb + 12, 12);
  out.u16(sb + 14, inodes[0].offset / 32);
  out.u64(sb + 16, inodes.length);
  if (version !== 2) {
    out.u64(sb + 24, minSec);
    out.u32(sb + 32, minNsec);
  }
  out.u32(sb + 36, block);
  out.u32(sb + 44, xattrBlk);

  for (const ino of inodes) writeInode(out, ino, version, xattrBlk * BLOCK_SIZE, tableOffsets);
  table.forEach((x, i) => {
    out.reserve(tableOffsets[i], entrySize(x));
    writeXattrEntry(out, tableOffsets[i], x);
  });
  for (const ino of inodes) if (ino.nblocks > 0) writeBlocks(out, ino);
  out.finish();
}
