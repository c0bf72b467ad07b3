/**
 * `/proc/self/mountinfo`: which mounts exist, where, and of what type. The parser is pure; only
 * {@link readMountInfo} touches the system.
 *
 * @module
 */

/** One line of mountinfo (proc(5)), with the escapes of paths undone. */
export interface MountInfoEntry {
  mountId: number;
  parentId: number;
  /** Absolute path of the mount point, in this process's mount namespace. */
  mountPoint: string;
  /** Root of the mount inside its filesystem. */
  root: string;
  /** Per-mount options, e.g. `ro,relatime`. */
  mountOptions: string;
  fsType: string;
  /** The source (`composefs`, `/dev/loop3`, …); `none` when the kernel shows none. */
  source: string;
  /** Per-superblock options, e.g. `ro,lowerdir+=/,datadir+=/objects,redirect_dir=on,metacopy=on`. */
  superOptions: string;
}

/** Undoes the octal escapes (`\040` for space, `\011`, `\012`, `\134`) the kernel puts in mountinfo paths. */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parses mountinfo text into entries, in the kernel's order (parents before the mounts on top of them). */
export function parseMountInfo(text: string): MountInfoEntry[] {
  const entries: MountInfoEntry[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const f = line.split(" ");
    // Optional fields (shared:N, master:N, …) end at a lone "-".
    const sep = f.indexOf("-", 6);
    if (sep < 0 || f.length < sep + 4) throw new Error(`malformed mountinfo line: ${line}`);
    entries.push({
      mountId: Number(f[0]),
      parentId: Number(f[1]),
      root: unescape(f[3]),
      mountPoint: unescape(f[4]),
      mountOptions: f[5],
      fsType: f[sep + 1],
      source: unescape(f[sep + 2]),
      superOptions: f[sep + 3],
    });
  }
  return entries;
}

/** The current mounts of this process's namespace. */
export function readMountInfo(): MountInfoEntry[] {
  return parseMountInfo(Deno.readTextFileSync("/proc/self/mountinfo"));
}

/** The mount visible at exactly `path` (the topmost one when several are stacked), or null. `path` must be absolute and canonical. */
export function mountAt(path: string, entries = readMountInfo()): MountInfoEntry | null {
  let found: MountInfoEntry | null = null;
  for (const e of entries) if (e.mountPoint === path) found = e;
  return found;
}

/** Mounts at or below the directory `path`, deepest first (the order they can be unmounted in). */
export function mountsUnder(path: string, entries = readMountInfo()): MountInfoEntry[] {
  const prefix = path.endsWith("/") ? path : path + "/";
  const under = entries.map((e, i) => ({ e, i, depth: e.mountPoint.split("/").length }))
    .filter(({ e }) => e.mountPoint === path || e.mountPoint.startsWith(prefix));
  // Deeper paths first; of mounts stacked on one path, the later (upper) one first.
  return under.sort((a, b) => b.depth - a.depth || b.i - a.i).map(({ e }) => e);
}

/** The mount whose mount point is the longest prefix of the canonical path `path`. */
export function containingMount(path: string, entries: MountInfoEntry[] = readMountInfo()): MountInfoEntry | null {
  let best: MountInfoEntry | null = null;
  for (const e of entries) {
    const p = e.mountPoint;
    const under = p === "/" || path === p || path.startsWith(p + "/");
    if (under && (!best || p.length >= best.mountPoint.length)) best = e;
  }
  return best;
}
