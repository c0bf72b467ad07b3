/**
 * composefs EROFS image reader (composefs-formats.md §4.8). {@link ImageReader} gives bounded,
 * validated access to inodes, xattrs and directories of any V0/V1/V2 image; {@link readImage}
 * rebuilds the lib/tree tree the way composefs-rs does. Every offset is checked, directories are
 * visited once, so a corrupt image throws an Error instead of crashing or looping.
 *
 * @module
 */
import {
  type ByteString,
  Directory,
  latin1Decode,
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
} from "../tree/tree.ts";
import { parseObjectPath } from "../dumpfile/parse.ts";
import { toHex } from "../fsverity/digest.ts";
import {
  BLOCK_SIZE,
  COMPOSEFS_MAGIC,
  EROFS_MAGIC,
  FEATURE_INCOMPAT_CHUNKED_FILE,
  type FormatVersion,
  joinXattrName,
  LAYOUT_CHUNK_BASED,
  LAYOUT_FLAT_INLINE,
  LAYOUT_FLAT_PLAIN,
  OVERLAY_ESCAPED_PREFIX,
  OVERLAY_PREFIX,
  parseMetacopy,
  SUPERBLOCK_OFFSET,
  XATTR_ESCAPED_OPAQUE,
  XATTR_ESCAPED_WHITEOUT,
  XATTR_ESCAPED_WHITEOUTS,
  XATTR_METACOPY,
  XATTR_REDIRECT,
  XATTR_USER_OPAQUE,
  XATTR_USER_WHITEOUT,
  XATTR_USER_WHITEOUTS,
} from "./format.ts";

/** Largest image accepted (as composefs-rs). */
export const MAX_IMAGE_SIZE = 1 << 30;

/** One inode as stored. */
export interface RawInode {
  nid: number;
  compact: boolean;
  layout: number;
  /** Full st_mode as stored. */
  mode: number;
  nlink: number;
  size: number;
  uid: number;
  gid: number;
  mtimeSec: number;
  mtimeNsec: number;
  /** The raw `i_u` union (block address, rdev or chunk format). */
  iU: number;
  /** Xattrs in C's load order: inline entries first, then shared ones. */
  xattrs: Array<[ByteString, Uint8Array]>;
  /** Byte offset of the inline tail (after header and xattrs). */
  inlineOffset: number;
}

/** A directory entry (`.` and `..` included). */
export interface RawDirent {
  name: ByteString;
  nid: number;
  fileType: number;
}

function fail(msg: string): never {
  throw new Error(`corrupt composefs image: ${msg}`);
}

/** Validated random access to the structures of a composefs EROFS image. */
export class ImageReader {
  readonly bytes: Uint8Array;
  readonly version: FormatVersion;
  readonly flags: number;
  readonly rootNid: number;
  readonly inodeCount: number;
  readonly buildTimeSec: number;
  readonly buildTimeNsec: number;
  readonly xattrBlkaddr: number;
  #view: DataView;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length < BLOCK_SIZE) fail(`only ${bytes.length} bytes, smaller than one block`);
    if (bytes.length > MAX_IMAGE_SIZE) fail(`${bytes.length} bytes is larger than the 1 GiB limit`);
    const v = this.#view;
    if (v.getUint32(0, true) !== COMPOSEFS_MAGIC) fail("bad composefs magic");
    if (v.getUint32(4, true) !== 1) fail(`unsupported composefs header version ${v.getUint32(4, true)}`);
    const cv = v.getUint32(12, true);
    if (cv > 2) fail(`unknown composefs format version ${cv}`);
    this.version = cv as FormatVersion;
    this.flags = v.getUint32(8, true);
    const sb = SUPERBLOCK_OFFSET;
    if (v.getUint32(sb, true) !== EROFS_MAGIC) fail("bad EROFS superblock magic");
    if (bytes[sb + 12] !== 12) fail(`unsupported block size 2^${bytes[sb + 12]}`);
    if ((v.getUint32(sb + 8, true) & ~7) !== 0) fail("unknown compatible features");
    if ((v.getUint32(sb + 80, true) & ~FEATURE_INCOMPAT_CHUNKED_FILE) !== 0) fail("unsupported incompatible features");
    if (bytes[sb + 13] !== 0) fail("inode extension slots are not supported");
    if (v.getUint32(sb + 40, true) !== 0) fail("meta_blkaddr is not 0");
    if (v.getUint16(sb + 86, true) !== 0 || bytes[sb + 91] !== 0) fail("extra devices or xattr prefixes present");
    this.rootNid = v.getUint16(sb + 14, true);
    this.inodeCount = Number(v.getBigUint64(sb + 16, true));
    this.buildTimeSec = Number(v.getBigInt64(sb + 24, true));
    this.buildTimeNsec = v.getUint32(sb + 32, true);
    this.xattrBlkaddr = v.getUint32(sb + 44, true);
    if (this.xattrBlkaddr * BLOCK_SIZE >= bytes.length && this.xattrBlkaddr !== 0) fail("xattr area beyond the image");
  }

  #check(offset: number, len: number, what: string): void {
    if (offset < 0 || len < 0 || offset + len > this.bytes.length) fail(`${what} lies outside the image`);
  }

  /** Reads and validates the inode `nid`. */
  inode(nid: number): RawInode {
    const v = this.#view;
    const o = nid * 32;
    if (o < SUPERBLOCK_OFFSET + 128) fail(`inode ${nid} overlaps the superblock`);
    this.#check(o, 32, `inode ${nid}`);
    const format = v.getUint16(o, true);
    if (format & ~0xf) fail(`inode ${nid} has unknown format bits ${format}`);
    const compact = (format & 1) === 0;
    const layout = format >> 1;
    if (layout !== LAYOUT_FLAT_PLAIN && layout !== LAYOUT_FLAT_INLINE && layout !== LAYOUT_CHUNK_BASED) {
      fail(`inode ${nid} has unsupported data layout ${layout}`);
    }
    const icount = v.getUint16(o + 2, true);
    const mode = v.getUint16(o + 4, true);
    // Compact inodes keep 16-bit ids and nlink, a 32-bit size, and take their mtime from the superblock.
    if (!compact) this.#check(o, 64, `inode ${nid}`);
    const size = compact ? v.getUint32(o + 8, true) : v.getBigUint64(o + 8, true);
    if (size > Number.MAX_SAFE_INTEGER) fail(`inode ${nid} has an absurd size ${size}`);
    const ino: RawInode = {
      nid,
      compact,
      layout,
      mode,
      nlink: compact ? v.getUint16(o + 6, true) : v.getUint32(o + 44, true),
      size: Number(size),
      uid: compact ? v.getUint16(o + 24, true) : v.getUint32(o + 24, true),
      gid: compact ? v.getUint16(o + 26, true) : v.getUint32(o + 28, true),
      mtimeSec: compact ? this.buildTimeSec : Number(v.getBigInt64(o + 32, true)),
      mtimeNsec: compact ? this.buildTimeNsec : v.getUint32(o + 40, true),
      iU: v.getUint32(o + 16, true),
      xattrs: [],
      inlineOffset: o + (compact ? 32 : 64),
    };
    if (icount > 0) ino.inlineOffset = this.#readXattrs(ino, ino.inlineOffset, icount);
    return ino;
  }

  #entry(o: number, end: number): [ByteString, Uint8Array, number] {
    if (o + 4 > end) fail("xattr entry runs past its area");
    const nameLen = this.bytes[o], index = this.bytes[o + 1];
    const valueLen = this.#view.getUint16(o + 2, true);
    const next = o + 4 + nameLen + valueLen;
    if (next > end) fail("xattr entry runs past its area");
    let name: ByteString;
    try {
      name = joinXattrName(index, latin1Decode(this.bytes.subarray(o + 4, o + 4 + nameLen)));
    } catch (e) {
      fail((e as Error).message);
    }
    return [name, this.bytes.slice(o + 4 + nameLen, next), (next + 3) & ~3];
  }

  #readXattrs(ino: RawInode, o: number, icount: number): number {
    const size = 12 + (icount - 1) * 4;
    const end = o + size;
    this.#check(o, size, `xattrs of inode ${ino.nid}`);
    const shared = this.bytes[o + 4];
    let p = o + 12 + shared * 4;
    if (p > end) fail(`inode ${ino.nid} has more shared xattrs than room`);
    while (p + 4 <= end) {
      const [name, value, next] = this.#entry(p, end);
      ino.xattrs.push([name, value]);
      p = next;
    }
    const base = this.xattrBlkaddr * BLOCK_SIZE;
    for (let i = 0; i < shared; i++) {
      const at = base + this.#view.getUint32(o + 12 + i * 4, true) * 4;
      this.#check(at, 4, `shared xattr of inode ${ino.nid}`);
      const [name, value] = this.#entry(at, this.bytes.length);
      ino.xattrs.push([name, value]);
    }
    return end;
  }

  /** The bytes of a flat inode (data blocks then inline tail), exactly `size` long. */
  data(ino: RawInode): Uint8Array {
    if (ino.layout === LAYOUT_CHUNK_BASED) fail(`inode ${ino.nid} has no data in the image (chunk-based)`);
    const size = ino.size;
    if (size > this.bytes.length) fail(`inode ${ino.nid} claims ${size} bytes, more than the image`);
    const tail = ino.layout === LAYOUT_FLAT_INLINE ? size % BLOCK_SIZE : 0;
    const blockBytes = size - tail;
    const out = new Uint8Array(size);
    if (blockBytes > 0) {
      const start = ino.iU * BLOCK_SIZE;
      this.#check(start, blockBytes, `data of inode ${ino.nid}`);
      out.set(this.bytes.subarray(start, start + blockBytes));
    }
    if (tail > 0) {
      this.#check(ino.inlineOffset, tail, `inline data of inode ${ino.nid}`);
      out.set(this.bytes.subarray(ino.inlineOffset, ino.inlineOffset + tail), blockBytes);
    }
    return out;
  }

  /** The entries of a directory inode, in stored order. */
  dirents(ino: RawInode): RawDirent[] {
    if ((ino.mode & S_IFMT) !== S_IFDIR) fail(`inode ${ino.nid} is not a directory`);
    const data = this.data(ino);
    const out: RawDirent[] = [];
    for (let start = 0; start < data.length; start += BLOCK_SIZE) {
      const block = data.subarray(start, Math.min(start + BLOCK_SIZE, data.length));
      this.#direntBlock(ino.nid, block, out);
    }
    return out;
  }

  #direntBlock(nid: number, block: Uint8Array, out: RawDirent[]): void {
    if (block.length < 12) fail(`directory ${nid} has a truncated block`);
    const v = new DataView(block.buffer, block.byteOffset, block.byteLength);
    const first = v.getUint16(8, true);
    if (first % 12 !== 0 || first === 0 || first > block.length) fail(`directory ${nid} has a bad entry table`);
    const n = first / 12;
    for (let i = 0; i < n; i++) {
      const nameoff = v.getUint16(i * 12 + 8, true);
      let end = i + 1 < n ? v.getUint16((i + 1) * 12 + 8, true) : block.length;
      if (i + 1 === n) { while (end > nameoff && block[end - 1] === 0) end--; }
      if (nameoff < first || end <= nameoff || end > block.length) fail(`directory ${nid} has a bad name offset`);
      const nidBig = v.getBigUint64(i * 12, true);
      if (nidBig > BigInt(Math.floor(this.bytes.length / 32))) fail(`directory ${nid} points outside the image`);
      out.push({ name: latin1Decode(block.subarray(nameoff, end)), nid: Number(nidBig), fileType: block[i * 12 + 10] });
    }
  }
}

/**
 * Walks the directory tree from the root, depth-first in stored order, calling `visit` for every
 * entry except `.`/`..`. Each directory inode is entered once: a second reference (a cycle or a
 * hardlinked directory) is an error.
 */
export function walkImage(
  r: ImageReader,
  visit: (parent: RawInode, name: ByteString, child: RawInode, path: ByteString) => boolean,
): RawInode {
  const root = r.inode(r.rootNid);
  if ((root.mode & S_IFMT) !== S_IFDIR) fail("the root inode is not a directory");
  const seenDirs = new Set<number>([root.nid]);
  const stack: Array<{ dir: RawInode; path: ByteString; entries: RawDirent[]; i: number }> = [
    { dir: root, path: "", entries: r.dirents(root), i: 0 },
  ];
  let total = 0;
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.i >= top.entries.length) {
      stack.pop();
      continue;
    }
    const e = top.entries[top.i++];
    if (++total > r.bytes.length) fail("more directory entries than the image can hold");
    const parentNid = stack.length > 1 ? stack[stack.length - 2].dir.nid : root.nid;
    if (e.name === ".") {
      if (e.nid !== top.dir.nid) fail(`"." of directory ${top.dir.nid} does not point to itself`);
      continue;
    }
    if (e.name === "..") {
      if (e.nid !== parentNid) fail(`".." of directory ${top.dir.nid} does not point to its parent`);
      continue;
    }
    if (e.name.length > 255 || e.name.includes("/") || e.name.includes("\0")) {
      fail(`invalid file name in directory ${top.dir.nid}`);
    }
    const child = r.inode(e.nid);
    const path = `${top.path}/${e.name}`;
    const descend = visit(top.dir, e.name, child, path);
    if ((child.mode & S_IFMT) === S_IFDIR && descend) {
      if (seenDirs.has(child.nid)) fail(`directory inode ${child.nid} is reachable twice (cycle)`);
      seenDirs.add(child.nid);
      stack.push({ dir: child, path, entries: r.dirents(child), i: 0 });
    }
  }
  return root;
}

const MARKERS = new Set<ByteString>([
  XATTR_METACOPY,
  XATTR_REDIRECT,
  XATTR_ESCAPED_WHITEOUT,
  XATTR_ESCAPED_WHITEOUTS,
  XATTR_ESCAPED_OPAQUE,
  XATTR_USER_WHITEOUT,
  XATTR_USER_WHITEOUTS,
  XATTR_USER_OPAQUE,
]);

function userXattrs(raw: Array<[ByteString, Uint8Array]>): Map<ByteString, Uint8Array> {
  const out = new Map<ByteString, Uint8Array>();
  for (const [name, value] of raw) {
    if (MARKERS.has(name)) continue;
    if (name.startsWith(OVERLAY_ESCAPED_PREFIX)) {
      out.set(OVERLAY_PREFIX + name.slice(OVERLAY_ESCAPED_PREFIX.length), value);
    } else if (!name.startsWith(OVERLAY_PREFIX)) out.set(name, value);
  }
  return out;
}

function leafContent(r: ImageReader, ino: RawInode, xattrs: Map<ByteString, Uint8Array>): LeafContent {
  switch (ino.mode & S_IFMT) {
    case S_IFREG: {
      if (xattrs.has(XATTR_ESCAPED_WHITEOUT)) return { kind: "chardev", rdev: 0 };
      const mc = xattrs.get(XATTR_METACOPY);
      const meta = mc ? parseMetacopy(mc) : null;
      if (meta) return { kind: "external", id: meta, size: ino.size };
      const redirect = xattrs.get(XATTR_REDIRECT);
      const id = redirect ? parseObjectPath(latin1Decode(redirect)) : null;
      if (id) return { kind: "external-noverity", id, size: ino.size };
      if (ino.layout === LAYOUT_CHUNK_BASED) return { kind: "sparse", size: ino.size };
      return { kind: "inline", data: r.data(ino) };
    }
    case S_IFLNK:
      if (ino.size > 4095) fail(`symlink inode ${ino.nid} is longer than 4095 bytes`);
      return { kind: "symlink", target: latin1Decode(r.data(ino)) };
    case S_IFCHR:
      return { kind: "chardev", rdev: ino.iU };
    case S_IFBLK:
      return { kind: "blockdev", rdev: ino.iU };
    case S_IFIFO:
      return { kind: "fifo" };
    case S_IFSOCK:
      return { kind: "socket" };
    default:
      fail(`inode ${ino.nid} has unknown file type ${ino.mode.toString(8)}`);
  }
}

function statOf(ino: RawInode, xattrs: Map<ByteString, Uint8Array>) {
  return newStat({
    mode: ino.mode,
    uid: ino.uid,
    gid: ino.gid,
    mtimeSec: ino.mtimeSec,
    mtimeNsec: ino.mtimeNsec,
    xattrs: userXattrs([...xattrs]),
  });
}

function isStubName(name: ByteString): boolean {
  return /^[0-9a-f]{2}$/.test(name);
}

/** The result of {@link readImage}. */
export interface ReadResult {
  root: Directory;
  version: FormatVersion;
}

/**
 * Parses a composefs image back into a tree (composefs-rs rules, §4.8): whiteout stubs dropped,
 * escaped whiteouts turned back into 0:0 devices, metacopy/redirect into external files, writer
 * markers removed and `trusted.overlay.overlay.*` un-escaped.
 *
 * @example
 * ```ts
 * const { root } = readImage(await Deno.readFile("image.cfs"));
 * ```
 */
export function readImage(bytes: Uint8Array): ReadResult {
  const r = new ImageReader(bytes);
  const dirs = new Map<number, Directory>();
  const leaves = new Map<number, Leaf>();
  const rootRaw = r.inode(r.rootNid);
  const rootXattrs = new Map(rootRaw.xattrs);
  dirs.set(rootRaw.nid, new Directory(statOf(rootRaw, rootXattrs)));
  walkImage(r, (parent, name, child) => {
    const dir = dirs.get(parent.nid)!;
    const xattrs = new Map(child.xattrs);
    if ((child.mode & S_IFMT) === S_IFDIR) {
      const d = new Directory(statOf(child, xattrs));
      dirs.set(child.nid, d);
      dir.set(name, d);
      return true;
    }
    let leaf = leaves.get(child.nid);
    if (leaf === undefined) {
      leaf = new Leaf(statOf(child, xattrs), leafContent(r, child, xattrs));
      leaves.set(child.nid, leaf);
    }
    if (r.version !== 2 && parent.nid === r.rootNid && isStubName(name) && leaf.isWhiteout) return false;
    dir.set(name, leaf);
    return false;
  });
  return { root: dirs.get(rootRaw.nid)!, version: r.version };
}

/**
 * The backing objects an image refers to (composefs-formats.md §4.8, GC rules): the digest of every
 * valid `trusted.overlay.metacopy` and the object path of every `trusted.overlay.redirect`, once
 * each, sorted by hex.
 */
export function imageObjects(bytes: Uint8Array): ObjectId[] {
  const r = new ImageReader(bytes);
  const found = new Map<string, ObjectId>();
  const add = (id: ObjectId | null) => {
    if (id) found.set(toHex(id.digest), id);
  };
  walkImage(r, (_parent, _name, child) => {
    for (const [name, value] of child.xattrs) {
      if (name === XATTR_METACOPY) add(parseMetacopy(value));
      else if (name === XATTR_REDIRECT) add(parseObjectPath(latin1Decode(value)));
    }
    return true;
  });
  return [...found.keys()].sort().map((hex) => found.get(hex)!);
}
