/**
 * Bench: `bootcfs pull` of the Debian OS image of `debian.ts` (four gzip layers) from a local
 * docker-registry into an empty repository, against `podman pull` of the same
 * image into empty overlay storage on the same fresh ext4 loop mount; the no-op re-pull; and the
 * unified path on xfs (podman into bootcfs's store, then the reflinked import), with the bytes the
 * import wrote. Needs root (loop mounts, overlay storage).
 */
import { unifiedStore } from "../../lib/podman/unified.ts";
import { Repository } from "../../lib/repository/mod.ts";
import { createLoopFs, run } from "../../tests/helpers/fs.ts";
import { startRegistry } from "../../tests/helpers/rig.ts";
import { debianLayout } from "./debian.ts";
import { best, bootcfsArgv, measure, type Measurement } from "./measure.ts";
import type { BenchRow, BenchSection } from "./row.ts";

function initRepo(path: string): void {
  Repository.init(path, { alg: "sha512", formats: { default: 1, extra: [] }, insecure: true }).repo.close();
}

const used = async (mnt: string) => {
  await run("sync", []);
  return Number((await run("df", ["--output=used", "-B1", mnt])).split("\n")[1].trim());
};

/** `podman pull` into a fresh overlay store at `root` (its runroot a short temp dir). */
async function podmanPull(root: string, ref: string): Promise<Measurement> {
  const runroot = await Deno.makeTempDir({ prefix: "bcfs-run-" });
  try {
    return await measure("podman", [
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
  const [bin, pre] = bootcfsArgv();
  const pull = (root: string, ...extra: string[]) =>
    measure(bin, [...pre, "--root", root, "--insecure", "--quiet", "pull", ref, "--tls-verify=false", ...extra]);
  const rows: BenchRow[] = [];

  {
    await using ext4 = await createLoopFs("ext4", { sizeMiB: Math.ceil(mib * 6) });
    let n = 0;
    const fresh = () => {
      const root = `${ext4.mountPoint}/root${n++}`;
      Deno.mkdirSync(`${root}/sysroot`, { recursive: true });
      initRepo(`${root}/sysroot/composefs`);
      return root;
    };
    let last = "";
    const ours = await best(2, async () => {
      last = fresh();
      return await pull(last);
    });
    const reference = await best(2, () => podmanPull(`${ext4.mountPoint}/podman${n++}`, ref));
    rows.push({
      name: `pull Debian 12 (4 gzip layers, ${files} files, ${mib.toFixed(0)} MiB), empty repo`,
      ours: ours.seconds,
      reference: reference.seconds,
      referenceName: "podman pull (overlay)",
      note: `peak ${ours.peakMiB.toFixed(0)} vs ${reference.peakMiB.toFixed(0)} MiB (goal < 150); ext4 loop; ` +
        `goal speed ratio ≥ 2`,
    });
    const again = await best(3, () => pull(last));
    rows.push({
      name: "re-pull (no-op)",
      ours: again.seconds,
      reference: null,
      referenceName: "-",
      note: `goal < 0.2 s (includes process start); peak ${again.peakMiB.toFixed(0)} MiB`,
    });
  }

  {
    await using xfs = await createLoopFs("xfs", { sizeMiB: Math.ceil(mib * 4) });
    const root = `${xfs.mountPoint}/root`;
    Deno.mkdirSync(`${root}/sysroot`, { recursive: true });
    initRepo(`${root}/sysroot/composefs`);
    const before = await used(xfs.mountPoint);
    const unified = await pull(root, "--unified", "--zero-copy", "--json");
    const after = await used(xfs.mountPoint);
    const store = Number(
      (await run("du", ["-s", "-B1", `${root}/sysroot/composefs/bootc/storage`])).split("\t")[0],
    );
    const stats = JSON.parse(unified.stdout).stats as { bytesReflinked: number; bytesCopied: number };
    const written = after - before - store;
    await Deno.remove(unifiedStore(root).runroot, { recursive: true }).catch(() => {});
    const reference = await podmanPull(`${xfs.mountPoint}/podman`, ref);
    rows.push({
      name: `unified pull on xfs (podman + reflinked import)`,
      ours: unified.seconds,
      reference: reference.seconds,
      referenceName: "podman pull alone",
      note:
        `repository wrote ${(written / (1 << 20)).toFixed(1)} MiB for ${
          (stats.bytesReflinked / (1 << 20)).toFixed(0)
        } MiB reflinked (${((100 * written) / Math.max(1, stats.bytesReflinked)).toFixed(2)}%, goal < 1% of file ` +
        `bytes), copied ${stats.bytesCopied}; peak ${unified.peakMiB.toFixed(0)} MiB`,
    });
  }
  return rows;
};
