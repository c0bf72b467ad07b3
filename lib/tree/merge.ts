/**
 * Layer merge (oci-and-boot.md §6.2): tar entries of successive OCI layers applied to one tree the
 * way composefs-rs `process_entry` does, and the tar-entry → tree-node rules of §4.4 step 3.
 * Pure: no I/O; external file contents are only object ids.
 *
 * @module
 */
import type { TarMeta } from "../tar/reader.ts";
import {
  type ByteString,
  byteString,
  Directory,
  latin1Decode,
  Leaf,
  type LeafContent,
  newStat,
  type Node,
  type Stat,
  utf8,
} from "./tree.ts";

/** What the merge reads of a tar member's metadata. */
export type EntryMeta = Pick<
  TarMeta,
  | "kind"
  | "typeflag"
  | "pathBytes"
  | "linkBytes"
  | "mode"
  | "uid"
  | "gid"
  | "mtime"
  | "devMajor"
  | "devMinor"
  | "xattrs"
>;

/** What a layer entry puts into the tree (composefs-rs `TarItem`). */
export type LayerItem =
  | { kind: "dir" }
  | { kind: "leaf"; content: LeafContent }
  /** A tar hardlink: the absolute path of its target in the merged tree. */
  | { kind: "hardlink"; target: ByteString };

/** One tar entry, ready to merge (composefs-rs `TarEntry`). */
export interface LayerEntry {
  /** Absolute, normalised path (`/` for the root). */
  path: ByteString;
  stat: Stat;
  item: LayerItem;
}

const WHITEOUT = ".wh.";
const OPAQUE = ".wh..wh..opq";

/**
 * The absolute path of a tar entry name or hardlink target (§4.4 step 5): `/` in front, empty and
 * `.` components dropped (so `./etc//x/` is `/etc/x`, `./` the root); `..` and NUL are refused.
 */
export function layerPath(raw: Uint8Array | ByteString): ByteString {
  const s = typeof raw === "string" ? raw : latin1Decode(raw);
  if (s.includes("\0")) throw new Error(`tar path ${JSON.stringify(utf8(s))} contains a NUL byte`);
  const parts: ByteString[] = [];
  for (const c of s.split("/")) {
    if (c === "" || c === ".") continue;
    if (c === "..") throw new Error(`tar path ${JSON.stringify(utf8(s))} contains ".."`);
    parts.push(c);
  }
  return "/" + parts.join("/");
}

/** glibc `makedev`: the Linux dev_t of a device number pair (values fit in 2^53 for tar's 21-bit fields). */
export function makedev(major: number, minor: number): number {
  const hi = Math.floor(major / 0x1000) * 0x1000 * 2 ** 32 + Math.floor(minor / 0x100) * 0x100 * 2 ** 12;
  return hi + (major % 0x1000) * 0x100 + (minor % 0x100);
}

/**
 * The merge entry of a tar member (§4.4 steps 2–3). `file` is the content of a regular file
 * (`inline` ≤ 64 bytes or `external`, as the layer stored it); the caller checks that rule. Owner
 * ids are already truncated to 32 bits by the tar reader; only the permission bits of the header
 * mode are kept (the file type comes from the entry kind); mtime keeps PAX nanoseconds; SCHILY
 * xattrs are copied so no view of the layer's buffers stays alive.
 */
export function layerEntry(meta: EntryMeta, file?: LeafContent): LayerEntry {
  const path = layerPath(meta.pathBytes);
  const xattrs = new Map<ByteString, Uint8Array>();
  for (const [name, value] of meta.xattrs) xattrs.set(byteString(name), value.slice());
  const stat = newStat({
    mode: meta.mode,
    uid: meta.uid,
    gid: meta.gid,
    mtimeSec: meta.mtime.sec,
    mtimeNsec: meta.mtime.nsec,
    xattrs,
  });
  const link = meta.linkBytes ?? new Uint8Array(0);
  const device = (): number => {
    if (meta.devMajor === null || meta.devMinor === null) {
      throw new Error(`device ${JSON.stringify(utf8(path))} has no device numbers`);
    }
    return makedev(meta.devMajor, meta.devMinor);
  };
  let item: LayerItem;
  switch (meta.kind) {
    case "dir":
      item = { kind: "dir" };
      break;
    case "file":
      if (!file) throw new Error(`regular file ${JSON.stringify(utf8(path))} without content`);
      item = { kind: "leaf", content: file };
      break;
    case "hardlink":
      item = { kind: "hardlink", target: layerPath(link) };
      break;
    case "symlink":
      item = { kind: "leaf", content: { kind: "symlink", target: latin1Decode(link) } };
      break;
    case "char":
      item = { kind: "leaf", content: { kind: "chardev", rdev: device() } };
      break;
    case "block":
      item = { kind: "leaf", content: { kind: "blockdev", rdev: device() } };
      break;
    case "fifo":
      item = { kind: "leaf", content: { kind: "fifo" } };
      break;
    default:
      throw new Error(`unsupported tar entry type ${JSON.stringify(meta.typeflag)} for ${JSON.stringify(utf8(path))}`);
  }
  return { path, stat, item };
}

/** A layer cannot be applied to the tree merged so far; the message names the layer and the path. */
export class LayerMergeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LayerMergeError";
  }
}

function show(path: ByteString): string {
  return JSON.stringify(utf8(path));
}

/**
 * Applies layers to a tree with composefs-rs `process_entry` semantics (§6.2): the root entry
 * replaces the root's stat; hardlinks resolve in the tree merged so far (target must be a
 * non-directory; the link's own metadata is dropped); parents are never created; `.wh.NAME`
 * removes NAME; a directory over a directory keeps the children and takes the new stat; anything
 * else replaces.
 *
 * One deliberate difference: `.wh..wh..opq` clears only what lower layers put in the directory.
 * Upstream also drops entries the same layer added before the marker (names sorting before `.`);
 * OCI says whiteouts apply to lower layers only, and podman keeps them, so we do too.
 */
export class LayerMerger {
  /** The tree being built; its root stat starts out "uninitialised" (mode 0, owner 0, mtime 0). */
  readonly root: Directory;
  #layer = "";
  /** Paths the current layer has placed: an opaque marker keeps these (podman's `unpackedPaths`). */
  #placed = new Set<ByteString>();

  constructor(root: Directory = new Directory(newStat())) {
    this.root = root;
  }

  /** Starts the next layer; `name` (e.g. its diff_id) appears in errors. */
  beginLayer(name: string): void {
    this.#layer = name;
    this.#placed.clear();
  }

  #fail(path: ByteString, why: string): never {
    throw new LayerMergeError(`layer ${this.#layer}: ${show(path)}: ${why}`);
  }

  /** The directory at `path` of the merged tree; errors unless every component is a directory. */
  #directory(of: ByteString, path: ByteString): Directory {
    let dir = this.root;
    for (const part of path === "/" ? [] : path.slice(1).split("/")) {
      const next = dir.get(part);
      if (!(next instanceof Directory)) {
        this.#fail(
          of,
          next === undefined ? `parent directory ${show(path)} does not exist` : `${show(path)} is not a directory`,
        );
      }
      dir = next;
    }
    return dir;
  }

  #split(path: ByteString): [ByteString, ByteString] {
    const slash = path.lastIndexOf("/");
    return [slash === 0 ? "/" : path.slice(0, slash), path.slice(slash + 1)];
  }

  /** Merges one entry of the current layer. */
  apply(entry: LayerEntry): void {
    const { path, item } = entry;
    if (path === "/") {
      if (item.kind !== "dir") this.#fail(path, "the root entry is not a directory");
      this.root.stat = entry.stat;
      return;
    }
    // The node is built before the parent is looked at, as upstream: a hardlink whiteout whose
    // target is missing is still an error.
    let node: Node;
    if (item.kind === "dir") node = new Directory(entry.stat);
    else if (item.kind === "leaf") node = new Leaf(entry.stat, item.content);
    else {
      const [tparent, tname] = this.#split(item.target);
      if (tname === "") this.#fail(path, "hardlink to the root directory");
      const target = this.#directory(path, tparent).get(tname);
      if (target === undefined) this.#fail(path, `hardlink target ${show(item.target)} does not exist`);
      if (target instanceof Directory) this.#fail(path, `hardlink target ${show(item.target)} is a directory`);
      node = target;
    }
    const [parentPath, name] = this.#split(path);
    const parent = this.#directory(path, parentPath);
    if (name.startsWith(WHITEOUT)) {
      if (name === OPAQUE) this.#clearLower(parent, parentPath);
      else if (name.length > WHITEOUT.length) parent.delete(name.slice(WHITEOUT.length));
      return;
    }
    this.#placed.add(path);
    const existing = parent.get(name);
    if (existing instanceof Directory && node instanceof Directory) existing.stat = node.stat;
    else parent.set(name, node);
  }

  /** Removes what lower layers put under `dir`, keeping (and descending into) paths this layer placed. */
  #clearLower(dir: Directory, path: ByteString): void {
    const stack: [Directory, ByteString][] = [[dir, path === "/" ? "" : path]];
    while (stack.length > 0) {
      const [d, prefix] = stack.pop()!;
      for (const name of [...d.names()]) {
        const child = `${prefix}/${name}`;
        if (!this.#placed.has(child)) d.delete(name);
        else {
          const node = d.get(name);
          if (node instanceof Directory) stack.push([node, child]);
        }
      }
    }
  }
}
