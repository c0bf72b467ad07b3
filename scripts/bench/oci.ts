/**
 * Bench: OCI import. A generated multi-layer gzip OCI layout (many small files and some big ones,
 * about `BENCH_OCI_MIB` MiB uncompressed, default 400) is pulled into an empty sha512 insecure
 * repository on a fresh ext4 loop mount, against, in the same run: the hashing floor (gunzip +
 * sha256 of compressed and uncompressed data + fs-verity sha512 of every file, our own readers, no
 * writes), `skopeo copy --dest-decompress oci:… dir:…`, and `ostree commit` of the unpacked tree
 * into a bare repository. Also: a second pull of the same image, and peak memory.
 *
 * `deno run -A scripts/bench/oci.ts --floor LAYOUT` runs the floor alone (what the bench times).
 */
import { createHash } from "node:crypto";
import { createGzip } from "node:zlib";
import { FsVerityHasher } from "../../lib/fsverity/digest.ts";
import { decompress } from "../../lib/oci/decompress.ts";
import { readFileChunks, readTar, type TarWriteEntry, writeTar } from "../../lib/tar/mod.ts";
import { createLoopFs } from "../../tests/helpers/fs.ts";
import { bootcfsArgv, measure } from "./measure.ts";
import type { BenchSection } from "./row.ts";

const TOTAL_MIB = Number(Deno.env.get("BENCH_OCI_MIB") ?? 400);
const te = new TextEncoder();

/** Compressible (about 2:1 with gzip) pseudo-random bytes, different for every `seed`. */
function content(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  const block = new Uint8Array(Math.min(size, 65536));
  crypto.getRandomValues(block);
  for (let i = 0; i < block.length; i++) block[i] = 0x40 | (block[i] & 0x0f);
  for (let o = 0; o < size; o += block.length) out.set(block.subarray(0, Math.min(block.length, size - o)), o);
  new DataView(out.buffer).setUint32(0, seed);
  return out;
}

type Item = { entry: TarWriteEntry; data?: Uint8Array };

/** Layer contents: a base of many small files, a layer of big files, an update layer, a small top. */
function* layerItems(layer: number, mib: number): Generator<Item> {
  const budget = mib << 20;
  const dir = (path: string): Item => ({ entry: { path, kind: "dir", mtime: 1700000000 } });
  const file = (path: string, data: Uint8Array): Item => ({ entry: { path, kind: "file", mtime: 1700000000 }, data });
  if (layer === 0) {
    yield dir("usr");
    yield dir("usr/share");
    let n = 0;
    for (let d = 0; n < budget; d++) {
      yield dir(`usr/share/d${d}`);
      for (let i = 0; i < 120 && n < budget; i++) {
        const size = [40, 300, 900, 2500, 6000, 14000, 30000][(d * 7 + i) % 7];
        yield file(`usr/share/d${d}/f${i}`, content(size, d * 1000 + i));
        n += size;
      }
    }
  } else if (layer === 1) {
    yield dir("usr/lib");
    for (let i = 0, n = 0; n < budget; i++, n += 24 << 20) {
      yield file(`usr/lib/big${i}`, content(24 << 20, 9_000_000 + i));
    }
  } else if (layer === 2) {
    yield dir("usr/share/d0");
    yield file("usr/share/d0/.wh.f1", new Uint8Array());
    yield dir("usr/share/d1");
    yield file("usr/share/d1/.wh..wh..opq", new Uint8Array());
    let n = 0;
    for (let d = 1; n < budget; d++) {
      for (let i = 0; i < 100 && n < budget; i++) {
        yield file(`usr/share/d${d}/g${i}`, content(4000, 5_000_000 + d * 1000 + i));
        n += 4000;
      }
    }
  } else {
    yield dir("etc");
    yield file("etc/os-release", te.encode("ID=bench\n"));
    yield file("usr/lib/big0", content(8 << 20, 7_777_777));
  }
}

/** Writes one gzip layer blob; returns its digest, size and diff_id. */
async function writeLayer(
  dir: string,
  items: Iterable<Item>,
): Promise<{ digest: string; size: number; diffId: string }> {
  const tmp = `${dir}/blobs/sha256/tmp`;
  const diff = createHash("sha256");
  const comp = createHash("sha256");
  let size = 0;
  const gz = createGzip();
  using out = await Deno.open(tmp, { write: true, create: true, truncate: true });
  const done = (async () => {
    for await (const c of gz as AsyncIterable<Uint8Array>) {
      comp.update(c);
      size += c.length;
      await out.write(c);
    }
  })();
  for await (const c of hashed(writeTar(items), diff)) {
    if (!gz.write(c)) await new Promise((r) => gz.once("drain", r));
  }
  gz.end();
  await done;
  const digest = `sha256:${comp.digest("hex")}`;
  await Deno.rename(tmp, `${dir}/blobs/sha256/${digest.slice(7)}`);
  return { digest, size, diffId: `sha256:${diff.digest("hex")}` };
}

async function writeBlob(dir: string, bytes: Uint8Array): Promise<{ digest: string; size: number }> {
  const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  await Deno.writeFile(`${dir}/blobs/sha256/${digest.slice(7)}`, bytes);
  return { digest, size: bytes.length };
}

/** The generated layout at `dir`, tagged `v1`. */
export async function writeLayout(dir: string, mib: number): Promise<{ layers: number; blobMiB: number }> {
  await Deno.mkdir(`${dir}/blobs/sha256`, { recursive: true });
  await Deno.writeTextFile(`${dir}/oci-layout`, JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const shares = [0.45, 0.35, 0.15, 0.05];
  const layers = [];
  for (const [i, s] of shares.entries()) {
    layers.push(await writeLayer(dir, layerItems(i, Math.max(1, Math.round(mib * s)))));
  }
  const config = await writeBlob(
    dir,
    te.encode(JSON.stringify({
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    })),
  );
  const manifest = await writeBlob(
    dir,
    te.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
      layers: layers.map((l) => ({
        mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
        digest: l.digest,
        size: l.size,
      })),
    })),
  );
  await Deno.writeTextFile(
    `${dir}/index.json`,
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        ...manifest,
        annotations: { "org.opencontainers.image.ref.name": "v1" },
      }],
    }),
  );
  return { layers: layers.length, blobMiB: layers.reduce((a, l) => a + l.size, 0) / 2 ** 20 };
}

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

/** The OCI import rows. */
export const bench: BenchSection = async (scratch) => {
  await using fs = await createLoopFs("ext4", { sizeMiB: Math.max(3072, TOTAL_MIB * 6) });
  const mnt = fs.mountPoint;
  const layout = `${scratch}/layout`;
  const { layers, blobMiB } = await writeLayout(layout, TOTAL_MIB);
  const settle = () => measure("sh", ["-c", `sync; cat ${layout}/blobs/sha256/* > /dev/null`]);
  const [bin, pre] = bootcfsArgv();

  await settle();
  const self = new URL(import.meta.url).pathname;
  const floorRun = await measure(Deno.execPath(), ["run", "-A", "--quiet", self, "--floor", layout]);
  const files = Number(floorRun.stdout.trim());

  const repo = `${mnt}/repo`;
  await measure(bin, [...pre, "--repo", repo, "--insecure", "repo", "init", "--hash", "sha512"]);
  await settle();
  const first = await measure(bin, [
    ...pre,
    "--repo",
    repo,
    "--progress",
    "none",
    "oci",
    "pull",
    `oci:${layout}:v1`,
    "--name",
    "bench",
  ]);
  const second = await measure(bin, [
    ...pre,
    "--repo",
    repo,
    "--progress",
    "none",
    "oci",
    "pull",
    `oci:${layout}:v1`,
    "--name",
    "bench2",
  ]);

  await settle();
  const skopeo = await measure("skopeo", ["copy", "-q", "--dest-decompress", `oci:${layout}:v1`, `dir:${mnt}/skopeo`]);

  const tree = `${mnt}/tree`;
  await unpack(layout, tree);
  await measure("ostree", ["init", `--repo=${mnt}/ostree`, "--mode=bare"]);
  await measure("sh", ["-c", `sync; find ${tree} -type f -exec cat {} + > /dev/null`]);
  const ostree = await measure("ostree", ["commit", `--repo=${mnt}/ostree`, "--branch=bench", `--tree=dir=${tree}`]);

  const what = `${layers} gzip layers, ${TOTAL_MIB} MiB → ${blobMiB.toFixed(0)} MiB, ${files} files`;
  const rate = (s: number) => `${(TOTAL_MIB / s).toFixed(0)} MiB/s`;
  return [
    {
      name: `oci pull: ${what} (sha512 insecure, ext4 loop)`,
      ours: first.seconds,
      reference: floorRun.seconds,
      referenceName: "hashing floor (gunzip+sha256×2+verity)",
      note: `${rate(first.seconds)}; peak ${first.peakMiB.toFixed(0)} MiB (floor ${floorRun.peakMiB.toFixed(0)} MiB)`,
    },
    {
      name: `oci pull vs skopeo copy --dest-decompress`,
      ours: first.seconds,
      reference: skopeo.seconds,
      referenceName: "skopeo copy oci: dir:",
      note: `skopeo peak ${skopeo.peakMiB.toFixed(0)} MiB`,
    },
    {
      name: `oci pull vs ostree commit of the unpacked tree`,
      ours: first.seconds,
      reference: ostree.seconds,
      referenceName: "ostree commit (bare)",
      note: `ostree peak ${ostree.peakMiB.toFixed(0)} MiB`,
    },
    {
      name: `oci pull again (already present, retag)`,
      ours: second.seconds,
      reference: null,
      referenceName: "",
      note: `peak ${second.peakMiB.toFixed(0)} MiB; includes Deno start-up`,
    },
  ];
};

if (import.meta.main && Deno.args[0] === "--floor") console.log(await floor(Deno.args[1]));
