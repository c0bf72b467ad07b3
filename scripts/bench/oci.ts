/**
 * Bench: OCI import. The Debian OS image of `debian.ts` (four gzip layers) is pulled into an empty
 * sha512 insecure repository on a fresh ext4 loop mount (one per run), against, in the same run:
 * the hashing floor (gunzip + sha256 of compressed and uncompressed data + fs-verity sha512 of
 * every file, our own readers, no writes), `skopeo copy --dest-decompress oci:… dir:…`, the same
 * work by native tools (native-import.sh), and `ostree commit` of the unpacked tree into a bare
 * repository. Also: a second pull of the same image, peak memory, and the import and the
 * references again on an ext4 image in RAM, where our final syncfs costs nothing (this machine's
 * disk writes ~275 MB/s, so making 800 MiB durable takes about 3 s by itself).
 *
 * `deno run -A scripts/bench/oci.ts --floor LAYOUT` runs the floor alone (what the bench times).
 */
import { bootcfsCommand } from "../../tests/helpers/cli.ts";
import { createHash } from "node:crypto";
import { FsVerityHasher } from "../../lib/fsverity/digest.ts";
import { decompress } from "../../lib/oci/decompress.ts";
import { readFileChunks, readTar } from "../../lib/tar/mod.ts";
import { createLoopFs } from "../../tests/helpers/fs.ts";
import { debianLayout } from "./debian.ts";
import { bestInTurns, measure, type Measurement, onFreshExt4 } from "./measure.ts";
import type { BenchSection } from "./row.ts";

async function* hashed(src: AsyncIterable<Uint8Array>, h: ReturnType<typeof createHash>): AsyncGenerator<Uint8Array> {
  for await (const c of src) {
    h.update(c);
    yield c;
  }
}

/** The hashing floor over a layout: every layer blob gunzipped, both sha256s, fs-verity sha512 of every file. */
async function floor(layout: string): Promise<number> {
  const index = JSON.parse(await Deno.readTextFile(`${layout}/index.json`));
  const blob = (d: string) => `${layout}/blobs/sha256/${d.slice(7)}`;
  const manifest = JSON.parse(await Deno.readTextFile(blob(index.manifests[0].digest)));
  let files = 0;
  for (const l of manifest.layers) {
    const comp = createHash("sha256");
    const plain = createHash("sha256");
    const tar = hashed(decompress(hashed(readFileChunks(blob(l.digest)), comp), "gzip"), plain);
    for await (const ev of readTar(tar)) {
      if (ev.type === "end") { for await (const _ of ev.trailing()) { /* hashed on the way */ } }
      if (ev.type !== "entry" || ev.kind !== "file") continue;
      const h = new FsVerityHasher("sha512");
      for await (const c of ev.body()) h.update(c);
      h.digest();
      files++;
    }
    comp.digest();
    plain.digest();
  }
  return files;
}

async function unpack(layout: string, dest: string): Promise<void> {
  const index = JSON.parse(await Deno.readTextFile(`${layout}/index.json`));
  const blob = (d: string) => `${layout}/blobs/sha256/${d.slice(7)}`;
  const manifest = JSON.parse(await Deno.readTextFile(blob(index.manifests[0].digest)));
  await Deno.mkdir(dest, { recursive: true });
  for (const l of manifest.layers) await measure("tar", ["-xzf", blob(l.digest), "-C", dest]);
}

/**
 * Our import into an empty repository, skopeo's copy, and the same work by native tools
 * (native-import.sh), best of two each, in turns, every run on a fresh ext4 loop mount of its own
 * whose image lives in `dir`; then the no-op re-import.
 */
async function importVsReferences(layout: string, mib: number, dir?: string) {
  const [bin, pre] = bootcfsCommand([]);
  const sizeMiB = Math.max(3072, Math.ceil(mib * 3));
  const onFreshFs = <T>(f: (mnt: string) => Promise<T>) => onFreshExt4(sizeMiB, f, dir);
  const ociPull = (repo: string, name: string) =>
    measure(bin, [...pre, "--repo", repo, "--progress", "none", "oci", "pull", `oci:${layout}:bench`, "--name", name]);
  const ours = () =>
    onFreshFs(async (mnt) => {
      await measure(bin, [...pre, "--repo", `${mnt}/repo`, "--insecure", "repo", "init", "--hash", "sha512"]);
      await settle(layout);
      const first = await ociPull(`${mnt}/repo`, "bench");
      second ??= await ociPull(`${mnt}/repo`, "bench2");
      return first;
    });
  let second: Measurement | undefined;
  const skopeo = () =>
    onFreshFs(async (mnt) => {
      await settle(layout);
      return await measure("skopeo", ["copy", "-q", "--dest-decompress", `oci:${layout}:bench`, `dir:${mnt}/skopeo`]);
    });
  const native = () =>
    onFreshFs(async (mnt) => {
      await settle(layout);
      return await measure("bash", [new URL("native-import.sh", import.meta.url).pathname, layout, `${mnt}/native`]);
    });
  const [first, skopeoRun, nativeRun] = await bestInTurns(2, ours, skopeo, native);
  return { first, second: second!, skopeo: skopeoRun, native: nativeRun };
}

/** Flushes what earlier steps wrote and warms the page cache with the layout's blobs. */
function settle(layout: string) {
  return measure("sh", ["-c", `sync; cat ${layout}/blobs/sha256/* > /dev/null`]);
}

/** The OCI import rows. */
export const bench: BenchSection = async () => {
  const { layout, mib, blobMiB } = await debianLayout();
  await settle(layout);
  const self = new URL(import.meta.url).pathname;
  const floorRun = await measure(Deno.execPath(), ["run", "-A", "--quiet", self, "--floor", layout]);
  const files = Number(floorRun.stdout.trim());

  const disk = await importVsReferences(layout, mib);
  // The same on an ext4 image in RAM: what is left once the disk is out of the way. Our import
  // waits until its data is on disk (syncfs before objects are named); skopeo never syncs.
  const ram = await importVsReferences(layout, mib, "/dev/shm");

  await using fs = await createLoopFs("ext4", { sizeMiB: Math.max(3072, Math.ceil(mib * 3)) });
  const mnt = fs.mountPoint;
  const tree = `${mnt}/tree`;
  await unpack(layout, tree);
  await measure("ostree", ["init", `--repo=${mnt}/ostree`, "--mode=bare"]);
  await measure("sh", ["-c", `sync; find ${tree} -type f -exec cat {} + > /dev/null`]);
  const ostree = await measure("ostree", ["commit", `--repo=${mnt}/ostree`, "--branch=bench", `--tree=dir=${tree}`]);

  const what = `Debian 12, 4 gzip layers, ${mib.toFixed(0)} MiB → ${blobMiB.toFixed(0)} MiB, ${files} files`;
  const rate = (s: number) => `${(mib / s).toFixed(0)} MiB/s`;
  const peak = (m: Measurement) => `peak ${m.peakMiB.toFixed(0)} MiB`;
  return [
    {
      name: `oci pull: ${what} (sha512 insecure, ext4 loop)`,
      ours: disk.first.seconds,
      reference: floorRun.seconds,
      referenceName: "hashing floor (gunzip+sha256×2+verity)",
      note: `${rate(disk.first.seconds)}; ${peak(disk.first)} (goal < 200 MB = 191 MiB; floor ${
        floorRun.peakMiB.toFixed(0)
      } MiB); goal ratio ≥ 0.5`,
    },
    {
      name: `oci pull vs skopeo copy --dest-decompress`,
      ours: disk.first.seconds,
      reference: disk.skopeo.seconds,
      referenceName: "skopeo copy oci: dir:",
      note: `skopeo ${peak(disk.skopeo)}; goal ratio ≥ 2`,
    },
    {
      name: `the same, ext4 image in RAM (/dev/shm)`,
      ours: ram.first.seconds,
      reference: ram.skopeo.seconds,
      referenceName: "skopeo copy oci: dir:",
      note: `ours ${peak(ram.first)}; no disk wait for our syncfs`,
    },
    {
      name: `oci pull vs the work it cannot skip, by native tools`,
      ours: disk.first.seconds,
      reference: disk.native.seconds,
      referenceName: "igzip+openssl sha256×2+tar -x, fsverity digest",
      note: `native-import.sh: no splitstreams, no EROFS; in RAM: ours ${ram.first.seconds.toFixed(2)} s, native ${
        ram.native.seconds.toFixed(2)
      } s`,
    },
    {
      name: `oci pull vs ostree commit of the unpacked tree`,
      ours: disk.first.seconds,
      reference: ostree.seconds,
      referenceName: "ostree commit (bare)",
      note: `ostree ${peak(ostree)}`,
    },
    {
      name: `oci pull again (already present, retag)`,
      ours: disk.second.seconds,
      reference: null,
      referenceName: "",
      note: `${peak(disk.second)}; includes Deno start-up; goal < 1 s`,
    },
  ];
};

if (import.meta.main && Deno.args[0] === "--floor") console.log(await floor(Deno.args[1]));
