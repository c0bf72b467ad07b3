/**
 * Bench: `bootcfs mkcomposefs` on a generated 100k-entry tree, from a dumpfile and from a
 * directory (entries/second). C mkcomposefs is not packaged in Debian 12, so there is no
 * reference column; the goal is ≤ 1.5× C's time.
 */
import { best, bootcfsArgv, measure } from "./measure.ts";
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

/** Rows: dumpfile → image, directory → image. */
export const bench: BenchSection = async (scratch) => {
  const [bin, pre] = bootcfsArgv();
  const rows: BenchRow[] = [];
  const dump = `${scratch}/tree.dump`;
  writeDumpfile(dump);
  const fromDump = await best(3, () => measure(bin, [...pre, "mkcomposefs", "--from-file", dump, `${scratch}/a.cfs`]));
  const src = `${scratch}/src`;
  writeDirectory(src);
  const fromDir = await best(3, () => measure(bin, [...pre, "mkcomposefs", src, `${scratch}/b.cfs`]));
  for (const [what, m] of [["dumpfile", fromDump], ["directory", fromDir]] as const) {
    rows.push({
      name: `mkcomposefs ${ENTRIES} entries from a ${what}`,
      ours: m.seconds,
      reference: null,
      referenceName: "C mkcomposefs (not in Debian 12)",
      note: `${(ENTRIES / m.seconds).toFixed(0)} entries/s; peak ${m.peakMiB.toFixed(0)} MiB; goal ≤ 1.5× C`,
    });
  }
  Deno.removeSync(src, { recursive: true });
  return rows;
};
