/**
 * Builds a tree from a real directory the way C mkcomposefs does (test-rig.md §3): no hardlink
 * detection, regular files of up to 64 bytes inline, larger ones external with their fs-verity
 * sha256 digest (copied into a digest store `DIR/xx/yyyy…` when one is given).
 *
 * @module
 */
import { lgetxattr, llistxattr } from "../../ffi/libc.ts";
import { withContextSync } from "../error/mod.ts";
import { digestFileSync, fsverityDigest, type HashAlg, toHex } from "../fsverity/mod.ts";
import {
  byteString,
  Directory,
  EMPTY_FILE,
  Leaf,
  type LeafContent,
  newStat,
  S_IFBLK,
  S_IFCHR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_IFSOCK,
  type Stat,
} from "./tree.ts";

/** Files up to this size are stored inside the image (C's LCFS_BUILD_INLINE_FILE_SIZE_LIMIT). */
export const INLINE_LIMIT = 64;

/** Options of {@link treeFromDirectory}. */
export interface FromDirOptions {
  /** Copy external file contents into `DIR/xx/yyyy…` (created as needed). */
  digestStore?: string;
  /** Set every mtime to 0 (C `--use-epoch`). */
  useEpoch?: boolean;
  /** Digest algorithm of external files (default sha256, the only one C knows). */
  alg?: HashAlg;
  /** Read no xattrs (C `--skip-xattrs`). */
  skipXattrs?: boolean;
  /** Read only `user.*` xattrs (C `--user-xattrs`). */
  userXattrs?: boolean;
  /** Leave character and block devices out, whiteouts included (C `--skip-devices`). */
  skipDevices?: boolean;
}

/**
 * Nanosecond mtimes of everything under `dir`, by relative path. Deno's stat only has
 * milliseconds, so one `find -printf %T@` pass supplies the exact values.
 */
function nanosecondMtimes(dir: string): Map<string, [number, number]> {
  const out = new Deno.Command("find", { args: ["-P", dir, "-printf", "%P\\0%T@\\0"], stdout: "piped" }).outputSync();
  if (!out.success) throw new Error(`find failed on ${dir}: ${new TextDecoder().decode(out.stderr)}`);
  const fields = new TextDecoder().decode(out.stdout).split("\0");
  const map = new Map<string, [number, number]>();
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const m = /^(-?\d+)(?:\.(\d+))?$/.exec(fields[i + 1]);
    if (!m) throw new Error(`unexpected mtime ${fields[i + 1]} from find`);
    map.set(fields[i], [Number(m[1]), Number((m[2] ?? "").padEnd(9, "0").slice(0, 9))]);
  }
  return map;
}

function readXattrs(path: string, opts: FromDirOptions): Map<string, Uint8Array> {
  const xattrs = new Map<string, Uint8Array>();
  if (opts.skipXattrs) return xattrs;
  for (const name of llistxattr(path)) {
    if (!opts.userXattrs || name.startsWith("user.")) xattrs.set(byteString(name), lgetxattr(path, name));
  }
  return xattrs;
}

/** Files up to this size are read whole (one read, no 1 MiB buffer); larger ones are streamed. */
const READ_WHOLE_LIMIT = 4 << 20;

/** Puts a file into the digest store as `xx/yyyy…` unless it is there already. */
function storeObject(store: string, hex: string, write: (tmp: string) => void): void {
  const dir = `${store}/${hex.slice(0, 2)}`;
  const dest = `${dir}/${hex.slice(2)}`;
  try {
    Deno.lstatSync(dest);
    return;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  Deno.mkdirSync(dir, { recursive: true });
  const tmp = `${dir}/.tmp-${hex.slice(2, 14)}-${Deno.pid}`;
  write(tmp);
  Deno.chmodSync(tmp, 0o644);
  Deno.renameSync(tmp, dest);
}

function externalFile(path: string, size: number, alg: HashAlg, store?: string): LeafContent {
  let digest: Uint8Array;
  let write: (tmp: string) => void;
  if (size <= READ_WHOLE_LIMIT) {
    const data = Deno.readFileSync(path);
    digest = fsverityDigest(data, alg);
    write = (tmp) => Deno.writeFileSync(tmp, data);
  } else {
    digest = digestFileSync(path, alg);
    write = (tmp) => Deno.copyFileSync(path, tmp);
  }
  if (store) storeObject(store, toHex(digest), write);
  return { kind: "external", id: { alg, digest }, size };
}

/**
 * Reads the directory `dir` into a tree.
 *
 * @example
 * ```ts
 * const root = treeFromDirectory("/srv/rootfs", { digestStore: "/srv/objects" });
 * ```
 */
export function treeFromDirectory(dir: string, opts: FromDirOptions = {}): Directory {
  const alg = opts.alg ?? "sha256";
  const mtimes = opts.useEpoch ? null : nanosecondMtimes(dir);
  const statOf = (path: string, rel: string, info: Deno.FileInfo): Stat => {
    const [mtimeSec, mtimeNsec] = mtimes?.get(rel) ?? [0, 0];
    return newStat({
      mode: info.mode ?? 0,
      uid: info.uid ?? 0,
      gid: info.gid ?? 0,
      mtimeSec,
      mtimeNsec,
      xattrs: readXattrs(path, opts),
    });
  };
  const leafOf = (path: string, info: Deno.FileInfo): LeafContent => {
    switch ((info.mode ?? 0) & S_IFMT) {
      case S_IFREG:
        if (info.size <= INLINE_LIMIT) {
          const data = Deno.readFileSync(path);
          return data.length === 0 ? EMPTY_FILE : { kind: "inline", data };
        }
        return externalFile(path, info.size, alg, opts.digestStore);
      case S_IFLNK:
        return { kind: "symlink", target: byteString(Deno.readLinkSync(path)) };
      case S_IFCHR:
        return { kind: "chardev", rdev: info.rdev ?? 0 };
      case S_IFBLK:
        return { kind: "blockdev", rdev: info.rdev ?? 0 };
      case S_IFIFO:
        return { kind: "fifo" };
      case S_IFSOCK:
        return { kind: "socket" };
      default:
        throw new Error("unknown file type");
    }
  };
  const rootInfo = Deno.lstatSync(dir);
  if (!rootInfo.isDirectory) throw new Error(`${dir} is not a directory`);
  const root = new Directory(statOf(dir, "", rootInfo));
  const stack: Array<[Directory, string, string]> = [[root, dir, ""]];
  while (stack.length > 0) {
    const [node, path, rel] = stack.pop()!;
    for (const entry of Deno.readDirSync(path)) {
      const childPath = `${path}/${entry.name}`;
      const childRel = rel === "" ? entry.name : `${rel}/${entry.name}`;
      withContextSync(`reading ${childPath}`, () => {
        const info = Deno.lstatSync(childPath);
        if (opts.skipDevices && (info.isCharDevice || info.isBlockDevice)) return;
        const stat = statOf(childPath, childRel, info);
        if (info.isDirectory) {
          const sub = new Directory(stat);
          node.set(byteString(entry.name), sub);
          stack.push([sub, childPath, childRel]);
        } else {
          node.set(byteString(entry.name), new Leaf(stat, leafOf(childPath, info)));
        }
      });
    }
  }
  return root;
}
