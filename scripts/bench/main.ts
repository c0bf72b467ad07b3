/**
 * `scripts/bench` (`deno task bench`, or `scripts/bench/run`): measures bootcfs against reference tools in the same run and prints a table
 * of ratios. Usage: `deno task bench [SECTION…]` (default: all sections).
 *
 * speed ratio = reference seconds / bootcfs seconds (≥ 1 means bootcfs is faster).
 */
import { formatTable } from "../../lib/cli/output.ts";
import { bench as erofs } from "./erofs.ts";
import { bench as fsverity } from "./fsverity.ts";
import { bench as oci } from "./oci.ts";
import { bench as pull } from "./pull.ts";
import { bench as registry } from "./registry.ts";
import { bench as repository } from "./repository.ts";
import { bench as tar } from "./tar.ts";
import type { BenchRow, BenchSection } from "./row.ts";

const SECTIONS: Record<string, BenchSection> = {
  fsverity,
  erofs,
  repository,
  tar,
  registry,
  oci,
  pull,
};

const wanted = Deno.args.length ? Deno.args : Object.keys(SECTIONS);
for (const w of wanted) {
  if (!SECTIONS[w]) throw new Error(`unknown bench section '${w}' (have: ${Object.keys(SECTIONS).join(", ")})`);
}

const scratch = Deno.env.get("BENCH_DIR") ?? Deno.makeTempDirSync({ prefix: "bootcfs-bench-" });
const rows: BenchRow[] = [];
try {
  for (const name of wanted) {
    console.error(`bench: ${name}…`);
    const dir = `${scratch}/${name}`;
    Deno.mkdirSync(dir, { recursive: true });
    rows.push(...await SECTIONS[name](dir));
  }
} finally {
  if (!Deno.env.get("BENCH_DIR")) Deno.removeSync(scratch, { recursive: true });
}

const s = (x: number) => x.toFixed(3);
console.log(formatTable(
  ["benchmark", "bootcfs s", "reference", "ref s", "speed ratio", "note"],
  rows.map((r) => [
    r.name,
    s(r.ours),
    r.referenceName,
    r.reference === null ? "-" : s(r.reference),
    r.reference === null ? "-" : (r.reference / r.ours).toFixed(2),
    r.note,
  ]),
));
