/**
 * composefs-rs `transform_for_oci` (oci-and-boot.md §6.3): what is done to a merged OCI tree before
 * its EROFS image is written. Pure; changes the tree in place.
 *
 * @module
 */
import { type ByteString, cloneStat, Directory, newStat, NO_XATTRS, type Stat, walk, type Xattrs } from "./tree.ts";

/** Which xattrs survive: only `security.capability`, or also every `user.*` (composefs-rs names). */
export type XattrMode = "allowlist-only" | "keep-user-xattrs";

/** Options of {@link transformForOci}. */
export interface OciTransformOptions {
  /** Default `allowlist-only`. */
  xattrs?: XattrMode;
}

/**
 * The root metadata of an image without a `/usr` directory: what containers/storage gives the
 * root of an unpacked image (root:root, 0555, mtime 0), no xattrs.
 */
export function scratchRootStat(): Stat {
  return newStat({ mode: 0o555 });
}

/**
 * Applies the OCI transform in place:
 * 1. the root takes `/usr`'s mode, owner, mtime (sec + nsec) and all its xattrs (a tar's own root
 *    entry is never used: runtimes ignore it too);
 * 2. `/run`, if it is a directory, is emptied and takes `/usr`'s mtime (build-time cache mounts);
 * 3. xattrs other than `security.capability` (and `user.*` in `keep-user-xattrs` mode) are dropped
 *    everywhere.
 * Upstream's final `compact` (dropping unreferenced leaves) has nothing to do here: this tree model
 * has no leaf table, so a removed leaf is simply gone.
 *
 * Deliberate difference: upstream fails when there is no `/usr` directory, which makes every
 * `FROM scratch` image unpullable; we give such a root {@link scratchRootStat} instead.
 */
export function transformForOci(root: Directory, opts: OciTransformOptions = {}): void {
  const usr = root.get("usr");
  root.stat = usr instanceof Directory ? cloneStat(usr.stat) : scratchRootStat();
  const run = root.get("run");
  if (run instanceof Directory) {
    run.stat.mtimeSec = root.stat.mtimeSec;
    run.stat.mtimeNsec = root.stat.mtimeNsec;
    run.clear();
  }
  const keepUser = (opts.xattrs ?? "allowlist-only") === "keep-user-xattrs";
  const keep = (name: ByteString) => name === "security.capability" || (keepUser && name.startsWith("user."));
  for (const [, node] of walk(root)) node.stat.xattrs = keptXattrs(node.stat.xattrs, keep);
}

/** `xattrs` without the names `keep` refuses: a new map (maps may be shared), or `xattrs` itself if all stay. */
function keptXattrs(xattrs: Xattrs, keep: (name: ByteString) => boolean): Xattrs {
  let all = true;
  for (const name of xattrs.keys()) all &&= keep(name);
  if (all) return xattrs;
  const kept = new Map<ByteString, Uint8Array>();
  for (const [name, value] of xattrs) if (keep(name)) kept.set(name, value);
  return kept.size === 0 ? NO_XATTRS : kept;
}
