/**
 * A directory of an image tree written out as real files — what bootc gets with
 * `cp -a --remove-destination <mounted image>/etc/. <state>/etc/.` (bootc-layout.md §3.5 step 10,
 * §3.1 step 5f), without mounting the image: modes, owners, mtimes, xattrs, symlinks, device
 * nodes, FIFOs and hardlinks (within the directory) kept; file data copied from the repository's
 * objects with copy_file_range, which shares extents where the filesystem can (xfs, btrfs).
 *
 * @module
 */
import {
  chmod,
  close,
  lchown,
  link,
  lsetxattr,
  mkdir,
  mknod,
  O_CREAT,
  O_EXCL,
  O_WRONLY,
  open,
  type PathArg,
  pread,
  setMtime,
  symlink,
  tryCopyFileRange,
  writeAll,
} from "../../ffi/libc.ts";
import { toHex } from "../fsverity/digest.ts";
import type { ObjectId, Repository } from "../repository/mod.ts";
import { Directory, latin1Encode, Leaf, S_IFBLK, S_IFCHR, S_IFIFO, S_IFSOCK, type Stat } from "../tree/mod.ts";

/** What a checkout wrote. */
export interface CheckoutStats {
  files: number;
  directories: number;
  bytes: number;
}

const SLASH = new Uint8Array([0x2f]);

function joinBytes(dir: Uint8Array, name: string): Uint8Array {
  const n = latin1Encode(name);
  const out = new Uint8Array(dir.length + 1 + n.length);
  out.set(dir);
  out.set(SLASH, dir.length);
  out.set(n, dir.length + 1);
  return out;
}

/** The read-and-write fallback's buffer: checkouts are synchronous, so one serves every copy. */
let copyBuf: Uint8Array | undefined;

/** Copies object `src` into the new file `dst`: copy_file_range, or read and write where it is refused. */
function copyObject(src: number, dst: number, size: number, what: string): void {
  let done = tryCopyFileRange(src, 0, dst, size, what) ?? 0;
  while (done < size) {
    const buf = copyBuf ??= new Uint8Array(1 << 20);
    const n = pread(src, buf, done, what);
    if (n === 0) break;
    writeAll(dst, buf.subarray(0, n), what);
    done += n;
  }
  if (done !== size) throw new Error(`${what}: object is ${done} bytes, the image says ${size}`);
}

/**
 * Creates the regular file `path` (which must not exist) with the content of `leaf`: inline data,
 * or a copy of its repository object. Mode 0600 until the caller sets the leaf's metadata.
 */
export function writeFileContent(repo: Repository, leaf: Leaf, path: PathArg): void {
  const c = leaf.content;
  const fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600);
  try {
    if (c.kind === "inline") writeAll(fd, c.data, "file");
    else if (c.kind === "external" || c.kind === "external-noverity") {
      const src = repo.openObject(toHex(c.id.digest) as ObjectId);
      try {
        copyObject(src, fd, c.size, `object ${toHex(c.id.digest)}`);
      } finally {
        close(src);
      }
    } else throw new Error(`no data to write for a ${c.kind} file`);
  } finally {
    close(fd);
  }
}

function setMetadata(path: Uint8Array, stat: Stat, symlinkNode: boolean): void {
  lchown(path, stat.uid, stat.gid);
  // chown clears setuid/setgid, so the mode comes after it; a symlink has no mode of its own.
  if (!symlinkNode) chmod(path, stat.mode);
  for (const [name, value] of stat.xattrs) lsetxattr(path, latin1Encode(name), value);
  setMtime(path, stat.mtimeSec, stat.mtimeNsec);
}

/**
 * Writes the contents of `dir` into the existing directory `dest`, which should be empty, and
 * gives `dest` the metadata of `dir` (as `cp -a dir/. dest/.` does). Regular files that are
 * objects are read from `repo`.
 */
export function checkoutTree(repo: Repository, dir: Directory, dest: string): CheckoutStats {
  const stats: CheckoutStats = { files: 0, directories: 0, bytes: 0 };
  const written = new Map<Leaf, Uint8Array>();
  const writeLeaf = (leaf: Leaf, path: Uint8Array) => {
    const first = written.get(leaf);
    if (first) return link(first, path);
    written.set(leaf, path);
    const c = leaf.content;
    switch (c.kind) {
      case "symlink":
        symlink(latin1Encode(c.target), path);
        return setMetadata(path, leaf.stat, true);
      case "chardev":
      case "blockdev":
        mknod(path, (c.kind === "chardev" ? S_IFCHR : S_IFBLK) | leaf.stat.mode, c.rdev);
        break;
      case "fifo":
      case "socket":
        mknod(path, (c.kind === "fifo" ? S_IFIFO : S_IFSOCK) | leaf.stat.mode, 0);
        break;
      default:
        writeFileContent(repo, leaf, path);
        stats.bytes += leaf.size;
    }
    stats.files++;
    setMetadata(path, leaf.stat, false);
  };
  // Depth first; a directory's metadata is set after its entries, so that their creation does not
  // change its mtime and a read-only mode does not stop them being written.
  const pending: [Directory, Uint8Array][] = [];
  const visit = (d: Directory, path: Uint8Array) => {
    for (const [name, node] of d.entries()) {
      const p = joinBytes(path, name);
      if (node instanceof Directory) {
        if (!mkdir(p, 0o700)) throw new Error(`${new TextDecoder().decode(p)} already exists`);
        stats.directories++;
        visit(node, p);
        pending.push([node, p]);
      } else writeLeaf(node as Leaf, p);
    }
  };
  const root = new TextEncoder().encode(dest);
  visit(dir, root);
  pending.push([dir, root]);
  for (const [d, p] of pending) setMetadata(p, d.stat, false);
  return stats;
}
