/**
 * Bench: lib/tar parsing of a generated ~500 MiB layer-like archive against GNU tar, and lib/oci
 * layer decompression (gzip, zstd) against `gzip -dc` / `zstd -dc`, all in the same run.
 * Ours is measured in-process (the reader is a library; no CLI command wraps it yet).
 */
import { decompress } from "../../lib/oci/decompress.ts";
import { fileSource, readFileChunks, readTar, type TarWriteItem, writeTar } from "../../lib/tar/mod.ts";
import { best, measure, type Measurement } from "./measure.ts";
import type { BenchRow, BenchSection } from "./row.ts";

const SIZE = Number(Deno.env.get("BENCH_TAR_BYTES") ?? 500 << 20);
const MiB = 1 << 20;

/** Content pool: half incompressible, half text-like, so gzip/zstd have realistic work. */
function pool(): Uint8Array {
  const p = new Uint8Array(16 * MiB);
  for (let o = 0; o < 8 * MiB; o += 65536) crypto.getRandomValues(p.subarray(o, o + 65536));
  const text = new TextEncoder().encode("lorem ipsum dolor sit amet, consectetur adipiscing elit /usr/lib/x86_64\n");
  for (let o = 8 * MiB; o < p.length; o += text.length) p.set(text.subarray(0, Math.min(text.length, p.length - o)), o);
  return p;
}

/** A layer-like archive: ~40% of the bytes in small files (0–16 KiB), the rest in 8–64 MiB files. */
function* items(total: number, data: Uint8Array): Generator<TarWriteItem> {
  let written = 0;
  let i = 0;
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  while (written < total) {
    const dir = `usr/share/d${i % 500}`;
    if (i % 500 === 0 && i < 500 * 500) yield { entry: { path: `${dir}/`, kind: "dir", mtime: 1700000000 } };
    const big = written > total * 0.4;
    const size = Math.min(big ? Math.floor((8 + rnd() * 56) * MiB) : Math.floor(rnd() * 16384), total - written);
    const off = Math.floor(rnd() * (data.length - Math.min(size, data.length)));
    const chunks = function* () {
      for (let left = size, o = off; left > 0;) {
        const n = Math.min(left, data.length - o, MiB);
        yield data.subarray(o, o + n);
        left -= n;
        o = o + n >= data.length ? 0 : o + n;
      }
    };
    yield {
      entry: { path: `${dir}/f${i}`, kind: "file", size, mode: 0o644, mtime: "1700000000.123456789" },
      data: (async function* () {
        yield* chunks();
      })(),
    };
    written += size + 512;
    i++;
  }
}

async function timeIt(fn: () => Promise<unknown>): Promise<Measurement> {
  const t0 = performance.now();
  const stdout = String(await fn());
  return { seconds: (performance.now() - t0) / 1000, peakMiB: Deno.memoryUsage().rss / MiB, stdout };
}

function row(
  name: string,
  bytes: number,
  ours: Measurement,
  ref: Measurement,
  refName: string,
  goal: string,
): BenchRow {
  const mib = bytes / MiB;
  return {
    name,
    ours: ours.seconds,
    reference: ref.seconds,
    referenceName: refName,
    note: `${(mib / ours.seconds).toFixed(0)} vs ${(mib / ref.seconds).toFixed(0)} MiB/s; ${goal}`,
  };
}

/** Rows: tar with bodies read, tar headers only, gunzip, unzstd. */
export const bench: BenchSection = async (scratch) => {
  const tarPath = `${scratch}/layer.tar`;
  {
    using f = await Deno.open(tarPath, { write: true, create: true, truncate: true });
    for await (const c of writeTar(items(SIZE, pool()))) await f.write(c);
  }
  const tarBytes = (await Deno.stat(tarPath)).size;
  const rows: BenchRow[] = [];
  await measure("dd", [`if=${tarPath}`, "of=/dev/null", "bs=1M"]); // page cache warm for both sides

  // Every body byte passes through the reader (what layer import does). GNU tar writing to
  // /dev/null skips the data, so its output goes through a pipe.
  const readAll = async () => {
    let n = 0;
    for await (const ev of readTar(readFileChunks(tarPath))) {
      if (ev.type === "entry") { for await (const c of ev.body()) n += c.length; }
    }
    return n;
  };
  const ours = await best(2, () => timeIt(readAll));
  const ref = await best(2, () => measure("sh", ["-c", `tar -xOf '${tarPath}' | cat > /dev/null`]));
  rows.push(
    row(
      `tar read ${(tarBytes / MiB).toFixed(0)} MiB, bodies`,
      tarBytes,
      ours,
      ref,
      "tar -xOf | cat",
      "goal ≥ 1 GiB/s",
    ),
  );

  // Headers only, bodies skipped by seeking (what oci-archive indexing does).
  const listOnly = async () => {
    using f = await Deno.open(tarPath);
    let n = 0;
    for await (const ev of readTar(fileSource(f))) if (ev.type === "entry") n++;
    return n;
  };
  const oursList = await best(2, () => timeIt(listOnly));
  const refList = await best(2, () => measure("sh", ["-c", `tar -tvf '${tarPath}' > /dev/null`]));
  rows.push(
    row(
      `tar list ${(tarBytes / MiB).toFixed(0)} MiB, headers`,
      tarBytes,
      oursList,
      refList,
      "tar -tvf",
      "seeks over bodies",
    ),
  );

  for (const [comp, tool, level] of [["gzip", "gzip", "-1"], ["zstd", "zstd", "-3"]] as const) {
    const packed = `${tarPath}.${comp}`;
    await measure("sh", ["-c", `${tool} ${level} -c '${tarPath}' > '${packed}'`]);
    const unpack = async () => {
      let n = 0;
      for await (const c of decompress(readFileChunks(packed), comp)) n += c.length;
      if (n !== tarBytes) throw new Error(`${comp}: got ${n} bytes, want ${tarBytes}`);
      return n;
    };
    const o = await best(2, () => timeIt(unpack));
    const r = await best(2, () => measure("sh", ["-c", `${tool} -dc '${packed}' > /dev/null`]));
    rows.push(row(`${comp} -d ${(tarBytes / MiB).toFixed(0)} MiB`, tarBytes, o, r, `${tool} -dc`, "output MiB/s"));
    await Deno.remove(packed);
  }
  await Deno.remove(tarPath);
  return rows;
};
