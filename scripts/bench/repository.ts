/**
 * Bench: the composefs repository. (1) Importing a tree of mixed files as objects (insecure,
 * sha512, copies) against `fsverity digest --hash-alg=sha512` of the same files plus `cp -r`;
 * (2) `bootcfs repo gc` over a repository of many objects, half of them live through streams.
 * Sizes: `BENCH_REPO_BYTES` (default 1 GiB), `BENCH_GC_OBJECTS` (default 200000).
 */
import { bootcfsCommand } from "../../tests/helpers/cli.ts";
import { best, measure, writeRandomFile } from "./measure.ts";
import type { BenchRow, BenchSection } from "./row.ts";
import { type ObjectId, Repository } from "../../lib/repository/mod.ts";

const IMPORT_BYTES = Number(Deno.env.get("BENCH_REPO_BYTES") ?? 1 << 30);
const GC_OBJECTS = Number(Deno.env.get("BENCH_GC_OBJECTS") ?? 200_000);

/** Mixed sizes: many small files, some medium, a few large; about `total` bytes. */
function writeTree(dir: string, total: number): string[] {
  const sizes = [100, 3000, 20_000, 200_000, 1 << 20, 16 << 20];
  const files: string[] = [];
  let written = 0;
  for (let i = 0; written < total; i++) {
    const size = Math.min(sizes[i % sizes.length] + (i % 97), total - written);
    const path = `${dir}/f${i}`;
    writeRandomFile(path, size);
    files.push(path);
    written += size;
  }
  return files;
}

async function importRow(scratch: string): Promise<BenchRow> {
  const src = `${scratch}/tree`;
  Deno.mkdirSync(src);
  const files = writeTree(src, IMPORT_BYTES);
  // Each timed run starts with the source in the page cache and no dirty data from earlier runs
  // (writeback of a previous copy would otherwise throttle whichever side runs later).
  const settle = async () => {
    await measure("sh", ["-c", `sync; cat ${src}/* > /dev/null`]);
  };
  const digestRef = await best(3, async () => {
    await settle();
    return await measure("fsverity", ["digest", "--hash-alg=sha512", ...files]);
  });
  const copy = `${scratch}/copy`;
  const copyRef = await best(3, async () => {
    await Deno.remove(copy, { recursive: true }).catch(() => {});
    await settle();
    return await measure("cp", ["-r", "--reflink=never", src, copy]);
  });
  Deno.removeSync(copy, { recursive: true });
  let oursSeconds = Infinity;
  for (let run = 0; run < 3; run++) {
    const path = `${scratch}/repo${run}`;
    const { repo } = Repository.init(path, { alg: "sha512", formats: { default: 1, extra: [] }, insecure: true });
    await settle();
    const t0 = performance.now();
    // No syncfs in the timed part: objects are not synced one by one, and `cp` does not sync either.
    for (const f of files) repo.ensureObjectFromFile(f, { copyOnly: true });
    oursSeconds = Math.min(oursSeconds, (performance.now() - t0) / 1000);
    repo.close();
    Deno.removeSync(path, { recursive: true });
  }
  const reference = digestRef.seconds + copyRef.seconds;
  const mib = IMPORT_BYTES / (1 << 20);
  return {
    name: `repo import ${files.length} files, ${(mib / 1024).toFixed(2)} GiB (sha512, insecure)`,
    ours: oursSeconds,
    reference,
    referenceName: "fsverity digest + cp -r",
    note: `${(mib / oursSeconds).toFixed(0)} MiB/s; goal speed ratio ≥ 0.8`,
  };
}

function randomId(): ObjectId {
  const b = crypto.getRandomValues(new Uint8Array(64));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("") as ObjectId;
}

async function gcRows(scratch: string): Promise<BenchRow[]> {
  const path = `${scratch}/gc-repo`;
  const { repo } = Repository.init(path, { alg: "sha512", formats: { default: 1, extra: [] }, insecure: true });
  // Object files are written directly under their (random) names: GC does not read object content.
  const content = new Uint8Array(100);
  const ids: ObjectId[] = [];
  for (let i = 0; i < GC_OBJECTS; i++) {
    const id = randomId();
    Deno.mkdirSync(`${path}/objects/${id.slice(0, 2)}`, { recursive: true });
    Deno.writeFileSync(`${path}/objects/${id.slice(0, 2)}/${id.slice(2)}`, content);
    ids.push(id);
  }
  // Half live: streams of 10,000 external chunks each, tagged.
  const live = ids.slice(0, ids.length / 2);
  for (let s = 0; s * 10_000 < live.length; s++) {
    const w = repo.createStreamWriter(0n);
    for (const id of live.slice(s * 10_000, (s + 1) * 10_000)) w.addExternal(id, content.length);
    repo.writeStream(w, `bench-${s}`, `bench/${s}`);
  }
  repo.sync(); // on disk, as in a real repository, not dirty in the page cache
  repo.close();
  const [bin, pre] = bootcfsCommand([]);
  const gcArgs = [...pre, "--repo", path, "repo", "gc", "--json"];
  const dry = await measure(bin, [...gcArgs, "--dry-run"]);
  const m = await measure(bin, gcArgs);
  const r = JSON.parse(m.stdout);
  if (r.objectsRemoved !== ids.length - live.length) throw new Error(`gc removed ${r.objectsRemoved} objects`);
  Deno.removeSync(path, { recursive: true });
  const perFile = (m.seconds - dry.seconds) / r.objectsRemoved * 1e6;
  return [{
    name: `repo gc --dry-run, ${GC_OBJECTS} objects (${live.length} live)`,
    ours: dry.seconds,
    reference: null,
    referenceName: "-",
    note: `mark + scan only; peak ${dry.peakMiB.toFixed(0)} MiB; goal: seconds`,
  }, {
    name: `repo gc, ${GC_OBJECTS} objects (${live.length} live)`,
    ours: m.seconds,
    reference: null,
    referenceName: "-",
    note: `removed ${r.objectsRemoved} (≈${perFile.toFixed(0)} µs per unlink); peak ${m.peakMiB.toFixed(0)} MiB`,
  }];
}

/** Rows: import throughput and GC time. */
export const bench: BenchSection = async (scratch) => [await importRow(scratch), ...await gcRows(scratch)];
