/** Bench: `bootcfs digest` against `fsverity digest` on a 1 GiB file, sha256 and sha512. */
import { bootcfsCommand } from "../../tests/helpers/cli.ts";
import { best, measure, writeRandomFile } from "./measure.ts";
import type { BenchSection } from "./row.ts";

const SIZE = Number(Deno.env.get("BENCH_DIGEST_BYTES") ?? 1 << 30);

/** Rows: one per hash algorithm. */
export const bench: BenchSection = async (scratch) => {
  const file = `${scratch}/digest-input`;
  writeRandomFile(file, SIZE);
  const [bin, pre] = bootcfsCommand([]);
  const rows = [];
  for (const alg of ["sha256", "sha512"]) {
    await measure("dd", [`if=${file}`, "of=/dev/null", "bs=1M"]); // page cache warm for both sides
    const ref = await best(3, () => measure("fsverity", ["digest", `--hash-alg=${alg}`, file]));
    const ours = await best(3, () => measure(bin, [...pre, "digest", "--hash", alg, file]));
    if (ours.stdout !== ref.stdout) throw new Error(`digest mismatch: ${ours.stdout} vs ${ref.stdout}`);
    const mib = SIZE / (1 << 20);
    rows.push({
      name: `digest ${alg} ${(mib / 1024).toFixed(2)} GiB`,
      ours: ours.seconds,
      reference: ref.seconds,
      referenceName: "fsverity digest",
      note: `${(mib / ours.seconds).toFixed(0)} vs ${(mib / ref.seconds).toFixed(0)} MiB/s; ` +
        `peak ${ours.peakMiB.toFixed(0)} vs ${ref.peakMiB.toFixed(0)} MiB; goal speed ratio ≥ 0.9`,
    });
  }
  Deno.removeSync(file);
  return rows;
};
