/**
 * Filesystem helpers for integration tests (root only): a root check that fails loudly, scratch
 * directories that clean up their mounts, and loop-mounted xfs/btrfs/ext4 filesystems.
 *
 * ```ts
 * Deno.test("reflink on xfs", async () => {
 *   requireRoot();
 *   await using fs = await createLoopFs("xfs");
 *   await Deno.writeTextFile(`${fs.mountPoint}/a`, "x");
 * }); // unmounted, loop device detached and image deleted here, even if the test threw
 * ```
 *
 * @module
 */
import { mountsUnder } from "../../lib/mount/mountinfo.ts";
import { run } from "./cli.ts";

export { run };

/**
 * Throws unless the process runs as root. Integration tests call it first: they must fail with
 * this message when run unprivileged, never skip silently (CI runs as root).
 */
export function requireRoot(): void {
  if (Deno.uid() !== 0) {
    throw new Error("this integration test needs root (mounts, loop devices): run `deno test` as root");
  }
}

/**
 * Unmounts every mount at or below `path`, deepest first; a busy one is detached lazily so that
 * cleanup always makes progress.
 */
export async function unmountAllUnder(path: string): Promise<void> {
  const abs = await Deno.realPath(path).catch(() => path);
  for (const m of mountsUnder(abs)) {
    const r = await new Deno.Command("umount", { args: [m.mountPoint], stdout: "null", stderr: "null" }).output();
    if (r.code !== 0) await run("umount", ["--lazy", m.mountPoint]);
  }
}

/** A scratch directory that is unmounted beneath and deleted on disposal. */
export interface ScratchDir extends AsyncDisposable {
  readonly path: string;
}

/** A new scratch directory (under `$TMPDIR`); `await using` it so it is always removed. */
export async function scratchDir(prefix = "bootcfs-test-", dir?: string): Promise<ScratchDir> {
  const path = await Deno.makeTempDir({ prefix, dir });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await unmountAllUnder(path);
      await Deno.remove(path, { recursive: true });
    },
  };
}

/** Filesystems {@link createLoopFs} can make. */
export type LoopFsKind = "xfs" | "btrfs" | "ext4";

/** A filesystem in an image file, attached to a loop device and mounted. */
export interface LoopFs extends AsyncDisposable {
  readonly kind: LoopFsKind;
  /** Where it is mounted. */
  readonly mountPoint: string;
  /** The loop device, e.g. `/dev/loop3`. */
  readonly device: string;
  /** The (sparse) image file. */
  readonly image: string;
}

const MKFS: Record<LoopFsKind, string[]> = {
  // reflink=1 is the xfsprogs 6 default; spelled out because the tests depend on it.
  xfs: ["mkfs.xfs", "-q", "-m", "reflink=1"],
  btrfs: ["mkfs.btrfs", "-q"],
  // Inode tables and journal zeroed now, not by a kernel thread in the background of what follows
  // (the benches time imports on a fresh mount).
  ext4: ["mkfs.ext4", "-q", "-E", "lazy_itable_init=0,lazy_journal_init=0"],
};
// mkfs.xfs refuses filesystems under 300 MiB; btrfs wants more than 109 MiB. The files are sparse.
const MIN_MIB: Record<LoopFsKind, number> = { xfs: 320, btrfs: 256, ext4: 64 };

/**
 * Creates a sparse image of `kind` in a new scratch directory (under `opts.dir`, default the
 * system temp dir; `opts.inodes` sizes an ext4 inode table), attaches it to a free loop device,
 * and mounts it. Disposal unmounts everything below the mount point, detaches the device and
 * deletes the scratch directory; a failure half-way cleans up what was already made.
 */
export async function createLoopFs(
  kind: LoopFsKind,
  opts: { sizeMiB?: number; dir?: string; inodes?: number } = {},
): Promise<LoopFs> {
  requireRoot();
  const dir = await scratchDir(`bootcfs-${kind}-`, opts.dir);
  const image = `${dir.path}/fs.img`;
  const mountPoint = `${dir.path}/mnt`;
  let device = "";
  const dispose = async () => {
    try {
      await unmountAllUnder(mountPoint);
    } finally {
      try {
        if (device) await run("losetup", ["-d", device]);
      } finally {
        await dir[Symbol.asyncDispose]();
      }
    }
  };
  try {
    await run("truncate", ["-s", `${Math.max(opts.sizeMiB ?? 0, MIN_MIB[kind])}M`, image]);
    const [mkfs, ...args] = MKFS[kind];
    // mkfs.ext4 -N: a small inode table, for tests that run out of inodes.
    const inodes = opts.inodes === undefined ? [] : kind === "ext4" ? ["-N", String(opts.inodes)] : null;
    if (inodes === null) throw new Error(`createLoopFs: inodes only for ext4, not ${kind}`);
    await run(mkfs, [...args, ...inodes, image]);
    device = (await run("losetup", ["--find", "--show", image])).trim();
    await Deno.mkdir(mountPoint);
    await run("mount", ["-t", kind, device, mountPoint]);
  } catch (e) {
    await dispose();
    throw e;
  }
  return { kind, mountPoint, device, image, [Symbol.asyncDispose]: dispose };
}
