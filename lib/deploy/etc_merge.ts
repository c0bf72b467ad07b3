/**
 * bootc's /etc three-way merge on real directories (bootc-layout.md §3.16): the stage pre-check
 * (§3.5 step 7) asks {@link diffEtc} for conflicts; finalize (§3.8 step 3) runs {@link mergeEtc}
 * into the staged deployment's `etc`. Local modifications win, files the user left alone take the
 * new defaults, local deletions propagate. The diff itself is `etc_diff.ts`.
 *
 * Paths are strings, as everywhere a real directory is read (`lib/tree/fromdir.ts`): a file name
 * that is not UTF-8 cannot be looked up again and fails the walk with its path.
 *
 * @module
 */
import { chmod, lchown, lgetxattr, llistxattr, lremovexattr, lsetxattr, lstat } from "../../ffi/libc.ts";
import { withContextSync } from "../error/mod.ts";
import { sha256Files } from "../runtime/file_hash.ts";
import { removeIfExists } from "../runtime/files.ts";
import {
  diffTrees,
  type EtcConflict,
  type EtcDiff,
  type EtcDiffResult,
  type EtcEntry,
  type EtcEntryKind,
  type EtcKinds,
  type EtcTree,
} from "./etc_diff.ts";

/** The merge refused: some local changes cannot be carried into the new etc (nothing was written). */
export class EtcMergeConflictError extends Error {
  /** Each unmergeable path; bootc prints every one as `Unmergable <reason>` before failing. */
  readonly conflicts: readonly EtcConflict[];

  constructor(conflicts: readonly EtcConflict[]) {
    super(`Merge conflicts found in etc: ${conflicts.map((c) => c.reason).join("; ")}`);
    this.name = "EtcMergeConflictError";
    this.conflicts = conflicts;
  }
}

const S_IFMT = 0o170000, S_IFDIR = 0o040000, S_IFREG = 0o100000, S_IFLNK = 0o120000;

function kindOf(mode: number): EtcEntryKind | null {
  switch (mode & S_IFMT) {
    case S_IFDIR:
      return "dir";
    case S_IFREG:
      return "file";
    case S_IFLNK:
      return "symlink";
    default:
      return null; // sockets, FIFOs and devices have no place in /etc; bootc skips them too
  }
}

/**
 * Visits every directory, regular file and symlink below `root` (not `root` itself), parents
 * before children, without following symlinks.
 */
function walk(root: string, visit: (rel: string, path: string, info: Deno.FileInfo, kind: EtcEntryKind) => void) {
  const stack = [""];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    const dirPath = dir === "" ? root : `${root}/${dir}`;
    const names = withContextSync(`reading ${dirPath}`, () => [...Deno.readDirSync(dirPath)].map((e) => e.name));
    for (const name of names) {
      const rel = dir === "" ? name : `${dir}/${name}`;
      const path = `${root}/${rel}`;
      withContextSync(`reading ${path}`, () => {
        const info = Deno.lstatSync(path);
        const kind = kindOf(info.mode ?? 0);
        if (kind === null) return;
        visit(rel, path, info, kind);
        if (kind === "dir") stack.push(rel);
      });
    }
  }
}

/**
 * SHA-256 of the file's content, even where the file has fs-verity. bootc takes the verity
 * digest when there is one, so a file with verity on one side and none on the other (the image
 * mount against the plain copy in `/etc`) would always look modified; the merge's own copies
 * never get verity, and this kernel has none. One kind of digest on every side compares like
 * with like.
 */
function contentDigest(path: string): string {
  return sha256Files([path]);
}

function readXattrs(path: string): Map<string, Uint8Array> {
  return new Map(llistxattr(path).map((name) => [name, lgetxattr(path, name)]));
}

/** Everything the diff compares of every entry below `root`. */
function readTree(root: string): Map<string, EtcEntry> {
  const tree = new Map<string, EtcEntry>();
  walk(root, (rel, path, info, kind) => {
    const identity = kind === "file" ? contentDigest(path) : kind === "symlink" ? Deno.readLinkSync(path) : "";
    tree.set(rel, {
      kind,
      mode: info.mode ?? 0,
      uid: info.uid ?? 0,
      gid: info.gid ?? 0,
      xattrs: readXattrs(path),
      identity,
    });
  });
  return tree;
}

function readKinds(root: string): EtcKinds {
  const kinds = new Map<string, EtcEntryKind>();
  walk(root, (rel, _path, _info, kind) => kinds.set(rel, kind));
  return kinds;
}

function readAndDiff(pristine: string, current: string, newEtc: string): EtcDiffResult & { currentTree: EtcTree } {
  const pristineTree = withContextSync(`reading pristine etc ${pristine}`, () => readTree(pristine));
  const currentTree = withContextSync(`reading current etc ${current}`, () => readTree(current));
  const newKinds = withContextSync(`reading new etc ${newEtc}`, () => readKinds(newEtc));
  return { ...diffTrees(pristineTree, currentTree, newKinds), currentTree };
}

/**
 * Walks pristine (the booted image's /etc), current (the running /etc) and new (the new
 * deployment's etc) and returns the diff with its conflicts; writes nothing (the stage pre-check
 * and `config-diff`).
 *
 * @example
 * ```ts
 * const { conflicts } = diffEtc("/run/pristine/etc", "/etc", "/run/new/etc");
 * for (const c of conflicts) console.error(`Unmergable ${c.reason}`);
 * ```
 */
export function diffEtc(pristine: string, current: string, newEtc: string): EtcDiffResult {
  const { diff, conflicts } = readAndDiff(pristine, current, newEtc);
  return { diff, conflicts };
}

/**
 * The first directory on the way from `root` to `rel` (`rel` itself excluded) that is missing or
 * is not a real directory, or null. The merge writes by path, and a symlink on the way would take
 * it out of the new etc; the diff already refuses such paths as conflicts, this holds if the tree
 * changed since, and for removals, whose parents the diff does not look at in the new etc.
 */
function brokenAncestor(root: string, rel: string): { path: string; exists: boolean } | null {
  let path = root;
  for (const part of rel.split("/").slice(0, -1)) {
    path = `${path}/${part}`;
    const st = lstat(path);
    if (st === null || !st.isDirectory) return { path, exists: st !== null };
  }
  return null;
}

/** Gives `path` exactly `xattrs`: any other it has (an image default, a label) is removed. */
function replaceXattrs(path: string, xattrs: ReadonlyMap<string, Uint8Array>): void {
  for (const name of llistxattr(path)) if (!xattrs.has(name)) lremovexattr(path, name);
  for (const [name, value] of xattrs) lsetxattr(path, name, value);
}

function setMetadata(path: string, entry: EtcEntry): void {
  lchown(path, entry.uid, entry.gid);
  // chown clears setuid/setgid, so the mode comes after it; a symlink has no mode of its own.
  if (entry.kind !== "symlink") chmod(path, entry.mode & 0o7777);
  replaceXattrs(path, entry.xattrs);
}

/** Writes the current etc's `rel` into the new etc: a directory is created or adjusted, a leaf replaced. */
function applyEntry(current: string, newEtc: string, rel: string, entry: EtcEntry): void {
  const dst = `${newEtc}/${rel}`;
  const broken = brokenAncestor(newEtc, rel);
  if (broken?.exists) throw new Error(`${broken.path} is not a directory`);
  if (entry.kind === "dir") {
    Deno.mkdirSync(dst, { recursive: true });
    // mkdir -p is satisfied by a symlink to a directory; chmod would then follow it.
    if (!lstat(dst)?.isDirectory) throw new Error(`${dst} is not a directory`);
  } else {
    removeIfExists(dst, { recursive: true });
    if (entry.kind === "symlink") Deno.symlinkSync(entry.identity, dst);
    else Deno.copyFileSync(`${current}/${rel}`, dst);
  }
  setMetadata(dst, entry);
}

/**
 * The three-way merge into `newEtc`: added, then modified paths are copied from `current` with
 * their owners, modes and xattrs (directories before what they hold), then the paths removed
 * locally are deleted from `newEtc`. Throws {@link EtcMergeConflictError} before writing anything
 * when a path is unmergeable. Returns the diff it applied.
 *
 * @example
 * ```ts
 * mergeEtc("/run/pristine/etc", "/etc", "/sysroot/state/deploy/<id>/etc");
 * ```
 */
export function mergeEtc(pristine: string, current: string, newEtc: string): EtcDiff {
  const { diff, conflicts, currentTree } = readAndDiff(pristine, current, newEtc);
  if (conflicts.length > 0) throw new EtcMergeConflictError(conflicts);
  for (const rel of [...diff.added, ...diff.modified]) {
    withContextSync(`merging ${rel} into ${newEtc}`, () => applyEntry(current, newEtc, rel, currentTree.get(rel)!));
  }
  for (const rel of diff.removed) {
    // Under something that is not a directory in the new etc, the path is not there to remove.
    if (brokenAncestor(newEtc, rel) !== null) continue;
    withContextSync(`removing ${rel} from ${newEtc}`, () => removeIfExists(`${newEtc}/${rel}`, { recursive: true }));
  }
  return diff;
}
