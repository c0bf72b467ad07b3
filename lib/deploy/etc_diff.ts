/**
 * The diff of bootc's /etc three-way merge (bootc-layout.md §3.16, bootc's `crates/etc-merge`) on
 * in-memory descriptions of the three trees: what the user changed in the running `/etc`
 * (current) against the booted image's `/etc` (pristine), and which of those changes cannot be
 * carried into the new deployment's `etc` (new). `etc_merge.ts` reads the trees and applies it.
 *
 * @module
 */

/** The kinds of entry the merge knows; sockets, FIFOs and devices are left out of the trees. */
export type EtcEntryKind = "dir" | "file" | "symlink";

/** One entry of an /etc tree, with what the diff compares (mtime is not part of it). */
export interface EtcEntry {
  kind: EtcEntryKind;
  /** `st_mode`, file type bits included. */
  mode: number;
  uid: number;
  gid: number;
  /** Every extended attribute (name → value). */
  xattrs: ReadonlyMap<string, Uint8Array>;
  /** A regular file's content digest, a symlink's target, "" for a directory. */
  identity: string;
}

/**
 * An /etc tree: relative path (`"foo/bar"`, no leading slash) → entry. The top directory itself
 * is not in it: bootc never compares or changes it.
 */
export type EtcTree = ReadonlyMap<string, EtcEntry>;

/** Of the new etc only the type of each path matters (for the recreate rule and the conflicts). */
export type EtcKinds = ReadonlyMap<string, EtcEntryKind>;

/** One unmergeable path; bootc prints it as `Unmergable <reason>`. */
export interface EtcConflict {
  path: string;
  reason: string;
}

/** Changes of the current /etc against the pristine one, as relative paths, parents before children. */
export interface EtcDiff {
  added: string[];
  modified: string[];
  removed: string[];
}

/** What {@link diffTrees} (and `diffEtc`) find. */
export interface EtcDiffResult {
  diff: EtcDiff;
  conflicts: EtcConflict[];
}

function sameXattrs(a: ReadonlyMap<string, Uint8Array>, b: ReadonlyMap<string, Uint8Array>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, value] of a) {
    const other = b.get(name);
    if (other === undefined || other.length !== value.length || other.some((x, i) => x !== value[i])) return false;
  }
  return true;
}

/** bootc's `stat_eq_ignore_mtime`: the mode includes the type, so a file that became a symlink differs here. */
function sameMetadata(a: EtcEntry, b: EtcEntry): boolean {
  return a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && sameXattrs(a.xattrs, b.xattrs);
}

/** Names in each directory of `tree`, sorted as bootc walks them ("" is the top directory). */
function childrenIndex(tree: EtcTree): Map<string, string[]> {
  const index = new Map<string, string[]>();
  for (const path of tree.keys()) {
    const slash = path.lastIndexOf("/");
    const parent = slash < 0 ? "" : path.slice(0, slash);
    let names = index.get(parent);
    if (!names) index.set(parent, names = []);
    names.push(path.slice(slash + 1));
  }
  for (const names of index.values()) names.sort();
  return index;
}

const join = (dir: string, name: string) => (dir === "" ? name : `${dir}/${name}`);

/**
 * The three-way diff: `added` (in current, not in pristine; an added directory brings every
 * descendant), `modified` (metadata, content, symlink target or type differ), `removed` (in
 * pristine, not in current; a removed directory is listed once). A directory that holds added or
 * modified paths but is no longer a directory in new is listed itself, before them, so that the
 * merge recreates it. Every added or modified path whose type (directory or not) differs in new
 * is a conflict.
 *
 * @example
 * ```ts
 * const { diff, conflicts } = diffTrees(pristine, current, newKinds);
 * for (const c of conflicts) console.error(`Unmergable ${c.reason}`);
 * ```
 */
export function diffTrees(pristine: EtcTree, current: EtcTree, newKinds: EtcKinds): EtcDiffResult {
  const added: string[] = [], modified: string[] = [], removed: string[] = [], conflicts: EtcConflict[] = [];
  const currentChildren = childrenIndex(current), pristineChildren = childrenIndex(pristine);
  const checked = new Set<string>();

  const checkMergeable = (path: string) => {
    if (checked.has(path)) return;
    checked.add(path);
    const isDir = current.get(path)!.kind === "dir";
    const inNew = newKinds.get(path);
    if (isDir && inNew !== undefined && inNew !== "dir") {
      conflicts.push({ path, reason: `Directory '${path}' now defaults to a file in new etc` });
    } else if (!isDir && inNew === "dir") {
      conflicts.push({ path, reason: `File '${path}' now defaults to a directory in new etc` });
    }
  };
  const record = (list: string[], path: string, at = list.length) => {
    list.splice(at, 0, path);
    checkMergeable(path);
  };
  const addAll = (dir: string) => {
    for (const name of currentChildren.get(dir) ?? []) {
      const path = join(dir, name);
      record(added, path);
      if (current.get(path)!.kind === "dir") addAll(path);
    }
  };

  const modifications = (dir: string) => {
    for (const name of currentChildren.get(dir) ?? []) {
      const path = join(dir, name);
      const cur = current.get(path)!, old = pristine.get(path);
      if (old === undefined) {
        record(added, path);
        if (cur.kind === "dir") addAll(path);
      } else if (cur.kind === "dir" && old.kind === "dir") {
        if (!sameMetadata(old, cur)) record(modified, path);
        const addedBefore = added.length, modifiedBefore = modified.length;
        modifications(path);
        // Local changes inside a directory that the new image dropped (or turned into a file):
        // the directory is listed ahead of them so that it is recreated first.
        if (newKinds.get(path) !== "dir") {
          if (added.length !== addedBefore) record(added, path, addedBefore);
          else if (modified.length !== modifiedBefore && modified[modifiedBefore - 1] !== path) {
            record(modified, path, modifiedBefore);
          }
        }
      } else if (cur.kind === "dir") {
        // A file became a directory: nothing under it is in pristine. (bootc lists only the
        // directory and so loses its contents in the merge.)
        record(modified, path);
        addAll(path);
      } else if (old.kind === "dir" || !sameMetadata(old, cur) || old.identity !== cur.identity) {
        record(modified, path);
      }
    }
  };

  const deletions = (dir: string) => {
    for (const name of pristineChildren.get(dir) ?? []) {
      const path = join(dir, name);
      const cur = current.get(path);
      if (cur === undefined) removed.push(path);
      // A type change either way is a modification, already listed.
      else if (cur.kind === "dir" && pristine.get(path)!.kind === "dir") deletions(path);
    }
  };

  modifications("");
  deletions("");
  return { diff: { added, modified, removed }, conflicts };
}
