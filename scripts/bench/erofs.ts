/**
 * Bench: `bootcfs mkcomposefs` on a generated 100k-entry tree, from a dumpfile and from a
 * directory, and on the dumpfile of the debootstrap'd Debian tree of `debian.ts` (entries/second).
 * C mkcomposefs is not packaged in Debian 12, so there is no reference column; the goal is ≤ 1.5×
 * C's time (C: 0.15 s for the Debian dumpfile).
 */
import { bootcfsCommand } from "../../tests/helpers/cli.ts";
import { debianRoot } from "./debian.ts";
import { best, measure, type Measurement } from "./measure.ts";
import type { BenchRow, BenchSection } from "./row.ts";

const ENTRIES = Number(Deno.env.get("BENCH_EROFS_ENTRIES") ?? 100_000);
const PER_DIR = 100;

/** The generated tree as a list of [relative path, kind, size] (deterministic). */
function layout(): Array<[string, "dir" | "file" | "link", number]> {
  const out: Array<[string, "dir" | "file" | "link", number]> = [];
  const dirs = Math.ceil(ENTRIES / PER_DIR);
  for (let d = 0; d < dirs && out.length < ENTRIES; d++) {
    const dir = `d${Math.floor(d / 32)}/s${d % 32}`;
    if (d % 32 === 0) out.push([`d${Math.floor(d / 32)}`, "dir", 0]);
    out.push([dir, "dir", 0]);
    for (let i = 0; i < PER_DIR - 1 && out.length < ENTRIES; i++) {
      const name = `${dir}/entry-${i.toString().padStart(3, "0")}.so`;
      if (i % 10 === 9) out.push([name, "link", 0]);
      else out.push([name, "file", i % 10 === 0 ? 4096 + d : i % 3 === 0 ? 0 : 1 + (i % 64)]);
    }
  }
  return out;
}

function writeDumpfile(path: string): void {
  const hex = (n: number) => n.toString(16).padStart(64, "0");
  const lines = ["/ 0 40755 2 0 0 0 1700000000.0 - - -"];
  let k = 0;
  for (const [p, kind, size] of layout()) {
    if (kind === "dir") lines.push(`/${p} 0 40755 2 0 0 0 1700000000.5 - - -`);
    else if (kind === "link") lines.push(`/${p} 6 120777 1 0 0 0 1700000000.5 target - -`);
    else if (size > 64) {
      const h = hex(++k);
      lines.push(`/${p} ${size} 100644 1 0 0 0 1700000000.5 ${h.slice(0, 2)}/${h.slice(2)} - ${h} user.x=1`);
    } else lines.push(`/${p} ${size} 100644 1 0 0 0 1700000000.5 - ${size ? "x".repeat(size) : "-"} -`);
  }
  Deno.writeTextFileSync(path, lines.join("\n") + "\n");
}

function writeDirectory(root: string): void {
  Deno.mkdirSync(root);
  const buf = new Uint8Array(8192);
  for (const [p, kind, size] of layout()) {
    const path = `${root}/${p}`;
    if (kind === "dir") Deno.mkdirSync(path);
    else if (kind === "link") Deno.symlinkSync("target", path);
    else {
      new DataView(buf.buffer).setUint32(0, size);
      Deno.writeFileSync(path, buf.subarray(0, size));
    }
  }
}

/** The dumpfile of the Debian bench tree (made with our own mkcomposefs and dump). */
async function debianDumpfile(scratch: string, bin: string, pre: string[]): Promise<string> {
  const root = await debianRoot();
  const image = `${scratch}/debian.cfs`, dump = `${scratch}/debian.dump`;
  await measure(bin, [...pre, "mkcomposefs", root, image]);
  // Through a file, not measure()'s stdout: names need not be UTF-8.
  const out = await Deno.open(dump, { write: true, create: true, truncate: true });
  const r = await new Deno.Command(bin, { args: [...pre, "dump", image], stdout: "piped" }).spawn();
  await r.stdout.pipeTo(out.writable);
  if (!(await r.status).success) throw new Error(`bootcfs dump ${image} failed`);
  return dump;
}

function lineCount(path: string): number {
  const bytes = Deno.readFileSync(path);
  let n = 0;
  for (const b of bytes) if (b === 0x0a) n++;
  return n;
}

/** Rows: dumpfile → image, directory → image, Debian dumpfile → image. */
export const bench: BenchSection = async (scratch) => {
  const [bin, pre] = bootcfsCommand([]);
  const rows: BenchRow[] = [];
  const debian = await debianDumpfile(scratch, bin, pre);
  const dump = `${scratch}/tree.dump`;
  writeDumpfile(dump);
  const fromDump = await best(3, () => measure(bin, [...pre, "mkcomposefs", "--from-file", dump, `${scratch}/a.cfs`]));
  const src = `${scratch}/src`;
  writeDirectory(src);
  const fromDir = await best(3, () => measure(bin, [...pre, "mkcomposefs", src, `${scratch}/b.cfs`]));
  const cases: Array<[string, number, Measurement]> = [
    [`${ENTRIES} entries from a dumpfile`, ENTRIES, fromDump],
    [`${ENTRIES} entries from a directory`, ENTRIES, fromDir],
  ];
  const m = await best(3, () => measure(bin, [...pre, "mkcomposefs", "--from-file", debian, `${scratch}/c.cfs`]));
  const entries = lineCount(debian);
  cases.push([`Debian tree dumpfile (${entries} entries)`, entries, m]);
  for (const [what, entries, m] of cases) {
    rows.push({
      name: `mkcomposefs ${what}`,
      ours: m.seconds,
      reference: null,
      referenceName: "C mkcomposefs (not in Debian 12)",
      note: `${(entries / m.seconds).toFixed(0)} entries/s; peak ${m.peakMiB.toFixed(0)} MiB; goal ≤ 1.5× C`,
    });
  }
  Deno.removeSync(src, { recursive: true });
  return rows;
};
