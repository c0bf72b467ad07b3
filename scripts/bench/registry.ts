/**
 * Bench: fetching every blob of a ~256 MiB, 6-layer image from a local docker-registry with
 * `lib/registry` (verified, 4 blobs in flight) against `skopeo copy docker://… dir:…`, both
 * writing to a fresh ext4 loop mount (or the scratch directory when not root).
 *
 * Run directly (`deno run -A scripts/bench/registry.ts REF DEST`), this file is "our" side of
 * the measurement: it fetches the image's blobs into DEST like `skopeo copy … dir:DEST`.
 */
import { mapConcurrent, RegistryClient } from "../../lib/registry/mod.ts";
import { createLoopFs, type LoopFs, run } from "../../tests/helpers/fs.ts";
import { startRegistry } from "../../tests/helpers/rig.ts";
import { best, measure, writeRandomFile } from "./measure.ts";
import type { BenchSection } from "./row.ts";
import { finishLayout, putBlob } from "./layout.ts";

const LAYER_MIB = (Deno.env.get("BENCH_REGISTRY_LAYERS_MIB") ?? "96,64,48,32,12,4").split(",").map(Number);
const CONCURRENCY = 4;

/** Fetches manifest, config and layers of `ref` into `dest` (one file per blob, named by hex digest). */
async function fetchImage(ref: string, dest: string): Promise<void> {
  const client = await RegistryClient.open(ref, { tlsVerify: false });
  const { manifest } = await client.resolveManifest();
  await Deno.mkdir(dest, { recursive: true });
  await Deno.writeFile(`${dest}/manifest.json`, manifest.bytes);
  const m = JSON.parse(new TextDecoder().decode(manifest.bytes));
  await mapConcurrent([m.config, ...m.layers], CONCURRENCY, async (d: { digest: string; size: number }) => {
    const file = await Deno.open(`${dest}/${d.digest.slice(7)}`, { write: true, create: true, truncate: true });
    await (await client.getBlob(d)).pipeTo(file.writable);
  });
  client.close();
}

/** An OCI layout at `dir` whose layers are tars of one random file each; returns its total blob bytes. */
async function makeLayout(dir: string): Promise<number> {
  await Deno.mkdir(`${dir}/blobs/sha256`, { recursive: true });
  const layers = [];
  const diffIds = [];
  for (const [i, mib] of LAYER_MIB.entries()) {
    await Deno.mkdir(`${dir}/src${i}`);
    writeRandomFile(`${dir}/src${i}/data${i}`, mib << 20);
    await run("tar", ["-cf", `${dir}/layer.tar`, "-C", `${dir}/src${i}`, "."]);
    await Deno.remove(`${dir}/src${i}`, { recursive: true });
    const layer = await putBlob(dir, `${dir}/layer.tar`);
    layers.push({ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layer });
    diffIds.push(layer.digest);
  }
  const config = await finishLayout(dir, layers, diffIds, "bench");
  return layers.reduce((n, l) => n + l.size, config.size);
}

/** One row: all blobs of the image, ours vs skopeo. */
export const bench: BenchSection = async (scratch) => {
  await using reg = await startRegistry(scratch);
  const layout = `${scratch}/layout`;
  const bytes = await makeLayout(layout);
  const ref = `${reg.host}/bench/big:1`;
  await run("skopeo", ["copy", "--dest-tls-verify=false", `oci:${layout}:bench`, `docker://${ref}`]);
  await Deno.remove(layout, { recursive: true });

  let fs: LoopFs | undefined;
  if (Deno.uid() === 0) fs = await createLoopFs("ext4", { sizeMiB: 1024 });
  try {
    const target = fs?.mountPoint ?? scratch;
    const dest = `${target}/dest`;
    const fresh = async () => await Deno.remove(dest, { recursive: true }).catch(() => {});
    const self = new URL(import.meta.url).pathname;
    const ours = await best(3, async () => {
      await fresh();
      return await measure(Deno.execPath(), ["run", "--allow-all", "--quiet", self, ref, dest]);
    });
    const reference = await best(3, async () => {
      await fresh();
      return await measure("skopeo", ["copy", "--src-tls-verify=false", `docker://${ref}`, `dir:${dest}`]);
    });
    await fresh();
    const mib = bytes / (1 << 20);
    return [{
      name: `registry fetch ${LAYER_MIB.length} layers ${mib.toFixed(0)} MiB`,
      ours: ours.seconds,
      reference: reference.seconds,
      referenceName: "skopeo copy dir:",
      note: `${(mib / ours.seconds).toFixed(0)} vs ${(mib / reference.seconds).toFixed(0)} MiB/s; peak ` +
        `${ours.peakMiB.toFixed(0)} vs ${reference.peakMiB.toFixed(0)} MiB; dest ${
          fs ? "ext4 loop" : "scratch dir"
        }; ` +
        `goal speed ratio ≥ 1`,
    }];
  } finally {
    await fs?.[Symbol.asyncDispose]();
  }
};

if (import.meta.main) {
  const [ref, dest] = Deno.args;
  if (!ref || !dest) throw new Error("usage: registry.ts REF DEST");
  await fetchImage(ref, dest);
}
