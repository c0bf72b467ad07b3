/**
 * `composefs-info dump` of an image (test-rig.md §3): the dumpfile text C composefs 1.0.8 prints,
 * which differs from the canonical writer (C's hardlink long form, xattrs in image order, real
 * directory sizes, V1 opaque markers shown un-escaped, native 0:0 devices hidden).
 *
 * @module
 */
import { toHex } from "../fsverity/digest.ts";
import { escapeField, escapeOptional } from "../dumpfile/escape.ts";
import { formatXattrs } from "../dumpfile/write.ts";
import { type ByteString, latin1Decode, S_IFBLK, S_IFCHR, S_IFLNK, S_IFMT, S_IFREG } from "../tree/tree.ts";
import {
  LAYOUT_CHUNK_BASED,
  OVERLAY_ESCAPED_PREFIX,
  OVERLAY_PREFIX,
  XATTR_ESCAPED_WHITEOUT,
  XATTR_ESCAPED_WHITEOUTS,
  XATTR_METACOPY,
  XATTR_REDIRECT,
  XATTR_USER_WHITEOUT,
  XATTR_USER_WHITEOUTS,
} from "./format.ts";
import { ImageReader, type RawInode, walkImage } from "./reader.ts";

const HIDDEN = new Set<ByteString>([XATTR_ESCAPED_WHITEOUTS, XATTR_USER_WHITEOUT, XATTR_USER_WHITEOUTS]);

/** The dump line of an inode minus its path and `@` marker, as C's loader sees it. */
interface Described {
  size: number;
  mode: number;
  /** NLINK UID GID RDEV MTIME */
  stat: string;
  payload: string;
  /** CONTENT DIGEST XATTRS… */
  tail: string;
}

function describe(r: ImageReader, ino: RawInode): Described {
  let mode = ino.mode, size = ino.size, rdev = 0;
  const type = mode & S_IFMT;
  if (type === S_IFCHR || type === S_IFBLK) rdev = ino.iU;
  let payload: ByteString | null = null, content: ByteString | null = null, digest = "-";
  if (type === S_IFLNK) payload = latin1Decode(r.data(ino));
  else if (type === S_IFREG && size !== 0 && ino.layout !== LAYOUT_CHUNK_BASED) content = latin1Decode(r.data(ino));
  const xattrs = new Map<ByteString, Uint8Array>();
  for (const [name, value] of ino.xattrs) {
    if (name === XATTR_REDIRECT) {
      if (type === S_IFREG) {
        const v = latin1Decode(value);
        payload = v.length > 1 && v[0] === "/" ? v.slice(1) : v;
      }
    } else if (name === XATTR_METACOPY) {
      if (type === S_IFREG && (value.length === 36 || value.length === 68)) digest = toHex(value.subarray(4));
    } else if (name === XATTR_ESCAPED_WHITEOUT && type === S_IFREG) {
      mode = (mode & ~S_IFMT) | S_IFCHR;
      size = 0;
      rdev = 0;
    } else if (HIDDEN.has(name)) {
      continue;
    } else if (name.startsWith(OVERLAY_ESCAPED_PREFIX)) {
      xattrs.set(OVERLAY_PREFIX + name.slice(OVERLAY_ESCAPED_PREFIX.length), value);
    } else if (!name.startsWith(OVERLAY_PREFIX)) {
      xattrs.set(name, value);
    }
  }
  return {
    size,
    mode,
    stat: `${ino.nlink} ${ino.uid} ${ino.gid} ${rdev} ${ino.mtimeSec}.${ino.mtimeNsec}`,
    payload: escapeOptional(payload),
    tail: `${escapeOptional(content)} ${digest}${formatXattrs(xattrs)}`,
  };
}

/**
 * Yields the lines (without newlines) `composefs-info dump IMAGE` prints for an image.
 *
 * @example
 * ```ts
 * for (const line of dumpImage(await Deno.readFile("image.cfs"))) console.log(line);
 * ```
 */
export function* dumpImage(bytes: Uint8Array): Generator<string> {
  const r = new ImageReader(bytes);
  const lines: string[] = [];
  const first = new Map<number, ByteString>();
  const root = r.inode(r.rootNid);
  const line = (path: ByteString, d: Described, link: ByteString | undefined) =>
    `${escapeField(path)} ${d.size} ${link === undefined ? "" : "@"}${d.mode.toString(8)} ${d.stat} ` +
    `${link === undefined ? d.payload : escapeOptional(link)} ${d.tail}`;
  lines.push(line("/", describe(r, root), undefined));
  walkImage(r, (_parent, _name, child, path) => {
    if ((child.mode & S_IFMT) === S_IFCHR && child.iU === 0) return false;
    const target = first.get(child.nid);
    if (target === undefined) first.set(child.nid, path);
    lines.push(line(path, describe(r, child), target));
    return true;
  });
  yield* lines;
}
