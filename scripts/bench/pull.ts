/**
 * Bench: `bootcfs pull` of the Debian OS image of `debian.ts` (four gzip layers) from a local
 * docker-registry into an empty repository, against `podman pull` of the same image into empty
 * overlay storage on the same fresh ext4 loop mount (backed by the disk, then by RAM); the no-op
 * re-pull; and the unified path on xfs (podman into bootcfs's store, then the reflinked import),
 * with the bytes the import wrote. Needs root (loop mounts, overlay storage).
 */
import { bootcfsCommand } from "../../tests/helpers/cli.ts";
import { storePodman, unifiedStore } from "../../lib/podman/unified.ts";
import { Repository } from "../../lib/repository/mod.ts";
import { createLoopFs, run } from "../../tests/helpers/fs.ts";
import { startRegistry } from "../../tests/helpers/rig.ts";
import { debianLayout } from "./debian.ts";
import { best, bestInTurns, measure, type Measurement, onFreshExt4 } from "./measure.ts";
import type { BenchRow, BenchSection } from "./row.ts";

function initRepo(path: string): void {
  Repository.init(path, { alg: "sha512", formats: { default: 1, extra: [] }, insecure: true }).repo.close();
}

/**
 * The bytes of file data a pull wrote into `repo`: every object that `streams/` and `images/` link
 * to (splitstreams, EROFS images, config and manifest), each once. The other new objects are the
 * reflinked files, which share the storage's blocks.
 */
async function dataWritten(repo: string): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  for (const dir of [`${repo}/streams`, `${repo}/images`]) {
    for await (const e of Deno.readDir(dir)) {
      if (!e.isSymlink) continue;
      const target = await Deno.realPath(`${dir}/${e.name}`);
      if (seen.has(target)) continue;
      seen.add(target);
      total += (await Deno.stat(target)).size;
    }
  }
  return total;
}

/**
 * After a sync: bytes written to the block device so far (its sectors-written counter), and the
 * bytes the filesystem has in use.
 */
async function deviceState(device: string, mnt: string): Promise<{ written: number; used: number }> {
  await run("sync", []);
  const stat = (await Deno.readTextFile(`/sys/block/${device.replace("/dev/", "")}/stat`)).trim().split(/\s+/);
  const used = Number((await run("df", ["--output=used", "-B1", mnt])).split("\n")[1].trim());
  return { written: Number(stat[6]) * 512, used };
}

/**
 * `podman pull` into a fresh overlay store at `root` (its runroot a short temp dir), then `sync -f`
 * of that filesystem, timed apart: podman does not wait for its files to reach the disk, and our
 * pull does (objects are named only once durable), so `synced` is the like-for-like figure.
 */
async function podmanPull(root: string, ref: string): Promise<Measurement & { synced: number }> {
  const runroot = await Deno.makeTempDir({ prefix: "bcfs-run-" });
  try {
    const m = await measure("podman", [
      "--root",
      root,
      "--runroot",
      runroot,
      "--storage-driver",
      "overlay",
      "pull",
      "--quiet",
      "--tls-verify=false",
      ref,
    ]);
    const t0 = performance.now();
    await run("sync", ["-f", root]);
    return { ...m, synced: m.seconds + (performance.now() - t0) / 1000 };
  } finally {
    await run("podman", ["--root", root, "--runroot", runroot, "--storage-driver", "overlay", "system", "reset", "-f"])
      .catch(() => {});
    // `system reset` removes the runroot itself.
    await Deno.remove(runroot, { recursive: true }).catch(() => {});
  }
}

/** Rows: direct pull vs podman pull (ext4), re-pull, unified pull on xfs with the bytes it wrote. */
export const bench: BenchSection = async (scratch) => {
  if (Deno.uid() !== 0) throw new Error("the pull bench needs root (loop mounts, overlay storage)");
  await using reg = await startRegistry(scratch);
  const { layout, files, mib } = await debianLayout();
  const ref = `${reg.host}/bench/pull:1`;
  await run("skopeo", ["copy", "--dest-tls-verify=false", `oci:${layout}:bench`, `docker://${ref}`]);
  const [bin, pre] = bootcfsCommand([]);
  const pull = (root: string, ...extra: string[]) =>
    measure(bin, [...pre, "--root", root, "--insecure", "--quiet", "pull", ref, "--tls-verify=false", ...extra]);
  const rows: BenchRow[] = [];

  // Every run on a fresh ext4 loop mount of its own, in turns: the tools meet the same conditions.
  // On the disk, our pull waits for its data to reach the disk before naming it (podman never
  // syncs), so the same runs on an ext4 image in RAM show what is left without the disk.
  const vsPodman = async (dir?: string) => {
    const onFreshFs = <T>(f: (mnt: string) => Promise<T>) => onFreshExt4(Math.ceil(mib * 3), f, dir);
    let again: Measurement | undefined;
    let synced = Infinity;
    const [ours, reference] = await bestInTurns(
      2,
      () =>
        onFreshFs(async (mnt) => {
          const root = `${mnt}/root`;
          Deno.mkdirSync(`${root}/sysroot`, { recursive: true });
          initRepo(`${root}/sysroot/composefs`);
          await run("sync", []);
          const first = await pull(root);
          again ??= await best(3, () => pull(root));
          return first;
        }),
      () =>
        onFreshFs(async (mnt) => {
          await run("sync", []);
          const m = await podmanPull(`${mnt}/podman`, ref);
          synced = Math.min(synced, m.synced);
          return m;
        }),
    );
    return { ours, reference, again: again!, synced };
  };
  const disk = await vsPodman();
  const ram = await vsPodman("/dev/shm");
  const goals = `goal < 150 MB = 143 MiB; goal speed ratio ≥ 2`;
  const withSync = (r: typeof disk) =>
    `podman pull + sync -f ${r.synced.toFixed(2)} s, ratio ${(r.synced / r.ours.seconds).toFixed(2)}`;
  rows.push({
    name: `pull Debian 12 (4 gzip layers, ${files} files, ${mib.toFixed(0)} MiB), empty repo`,
    ours: disk.ours.seconds,
    reference: disk.reference.seconds,
    referenceName: "podman pull (overlay)",
    note: `peak ${disk.ours.peakMiB.toFixed(0)} vs ${disk.reference.peakMiB.toFixed(0)} MiB (${goals}); ext4 loop; ` +
      withSync(disk),
  });
  rows.push({
    name: "the same, ext4 image in RAM (/dev/shm)",
    ours: ram.ours.seconds,
    reference: ram.reference.seconds,
    referenceName: "podman pull (overlay)",
    note: `peak ${ram.ours.peakMiB.toFixed(0)} vs ${ram.reference.peakMiB.toFixed(0)} MiB (${goals}); ${withSync(ram)}`,
  });
  rows.push({
    name: "re-pull (no-op)",
    ours: disk.again.seconds,
    reference: null,
    referenceName: "-",
    note: `goal < 0.2 s (includes process start); peak ${disk.again.peakMiB.toFixed(0)} MiB`,
  });

  {
    await using xfs = await createLoopFs("xfs", { sizeMiB: Math.ceil(mib * 4) });
    const root = `${xfs.mountPoint}/root`;
    Deno.mkdirSync(`${root}/sysroot`, { recursive: true });
    initRepo(`${root}/sysroot/composefs`);
    // Podman first, into bootcfs's own storage, so that what the import writes is measured alone:
    // the unified pull then finds the image there and only imports it.
    const store = unifiedStore(root);
    const podman = await measure(...await storePodman(store, ["pull", "--quiet", "--tls-verify=false", ref]));
    const before = await deviceState(xfs.device, xfs.mountPoint);
    const unified = await pull(root, "--unified", "--zero-copy", "--json");
    const after = await deviceState(xfs.device, xfs.mountPoint);
    await Deno.remove(store.runroot, { recursive: true }).catch(() => {});
    const stats = JSON.parse(unified.stdout).stats as { bytesReflinked: number; bytesCopied: number };
    const mibOf = (n: number) => (n / (1 << 20)).toFixed(1);
    const share = (n: number) => `${((100 * n) / Math.max(1, stats.bytesReflinked)).toFixed(2)}%`;
    const written = after.written - before.written;
    const grown = after.used - before.used;
    const data = await dataWritten(`${root}/sysroot/composefs`);
    rows.push({
      name: `unified pull on xfs: the reflinked import (image already in bootcfs's storage)`,
      ours: unified.seconds,
      reference: podman.seconds,
      referenceName: "podman pull into that storage",
      note: `${mibOf(stats.bytesReflinked)} MiB reflinked, ${stats.bytesCopied} bytes copied; data written ` +
        `${mibOf(data)} MiB (${share(data)}: EROFS image, splitstreams; goal < 1% of file bytes); the device took ` +
        `${mibOf(written)} MiB of writes (${share(written)}; EROFS, splitstreams, inodes, journal) and the ` +
        `filesystem grew ${mibOf(grown)} MiB (${share(grown)}); peak ` +
        `${unified.peakMiB.toFixed(0)} MiB`,
    });
  }
  return rows;
};
