/** One line of the `scripts/bench` table: our time against a reference tool's, measured in the same run. */
export interface BenchRow {
  /** What was measured, e.g. "digest sha256 1 GiB". */
  name: string;
  /** Our wall-clock seconds. */
  ours: number;
  /** The reference's wall-clock seconds (same input, same run), or null when there is no reference. */
  reference: number | null;
  /** The reference tool, e.g. "fsverity digest". */
  referenceName: string;
  /** Free text: throughput, peak memory, goal. */
  note: string;
}

/** A bench section: measures and returns its rows. `scratch` is a fresh directory it may fill. */
export type BenchSection = (scratch: string) => Promise<BenchRow[]>;
