/**
 * Canonical dumpfile writer (composefs-formats.md §5.4, composefs-rs `write_dumpfile`).
 *
 * @module
 */
import { toHex } from "../fsverity/digest.ts";
import {
  type ByteString,
  countLinks,
  Directory,
  latin1Decode,
  type Leaf,
  S_IFDIR,
  type Stat,
  walk,
  type Xattrs,
} from "../tree/tree.ts";
import { escapeField, escapeOptional } from "./escape.ts";

/** ` key=value` for every xattr, in byte order of names. */
export function formatXattrs(xattrs: Iterable<[ByteString, Uint8Array]>): string {
  let out = "";
  for (const [k, v] of xattrs) out += ` ${escapeField(k, true)}=${escapeField(latin1Decode(v), true)}`;
  return out;
}

function sortedXattrs(x: Xattrs): Array<[ByteString, Uint8Array]> {
  return [...x].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

function statFields(st: Stat, type: number, nlink: number, rdev: number): string {
  return `${(type | st.mode).toString(8)} ${nlink} ${st.uid} ${st.gid} ${rdev} ${st.mtimeSec}.${st.mtimeNsec}`;
}

/** The object path `xx/yyyy…` of a digest. */
export function objectPath(digest: Uint8Array): string {
  const hex = toHex(digest);
  return `${hex.slice(0, 2)}/${hex.slice(2)}`;
}

function leafLine(path: string, leaf: Leaf, nlink: number): string {
  const c = leaf.content;
  let payload = "-", content = "-", digest = "-", rdev = 0;
  switch (c.kind) {
    case "inline":
      content = escapeOptional(latin1Decode(c.data));
      break;
    case "external":
    case "external-noverity":
      payload = objectPath(c.id.digest);
      digest = toHex(c.id.digest);
      break;
    case "symlink":
      payload = escapeOptional(c.target);
      break;
    case "chardev":
    case "blockdev":
      rdev = c.rdev;
      break;
  }
  return `${path} ${leaf.size} ${statFields(leaf.stat, leaf.fileType, nlink, rdev)} ${payload} ${content} ${digest}` +
    formatXattrs(sortedXattrs(leaf.stat.xattrs));
}

/**
 * Yields the dumpfile lines of a tree (without newlines), pre-order, children in byte order.
 *
 * @example
 * ```ts
 * const text = [...writeDumpfile(root)].map((l) => l + "\n").join("");
 * ```
 */
export function* writeDumpfile(root: Directory): Generator<string> {
  const links = countLinks(root);
  const first = new Map<Leaf, string>();
  for (const [rawPath, node] of walk(root)) {
    const path = escapeOptional(rawPath);
    if (node instanceof Directory) {
      yield `${path} 0 ${statFields(node.stat, S_IFDIR, 2 + node.subdirCount(), 0)} - - -` +
        formatXattrs(sortedXattrs(node.stat.xattrs));
      continue;
    }
    const nlink = links.get(node) ?? 1;
    if (nlink > 1) {
      const target = first.get(node);
      if (target !== undefined) {
        yield `${path} 0 @120000 - - - - 0.0 ${target} - -`;
        continue;
      }
      first.set(node, path);
    }
    yield leafLine(path, node, nlink);
  }
}

/** The whole dumpfile text of a tree. */
export function dumpfileText(root: Directory): string {
  let out = "";
  for (const line of writeDumpfile(root)) out += line + "\n";
  return out;
}
