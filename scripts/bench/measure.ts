/** Timing and peak-memory measurement of commands, shared by the bench sections. */
import { createLoopFs } from "../../tests/helpers/fs.ts";

/** Wall-clock seconds and peak resident memory (MiB) of one run of a command. */
export interface Measurement {
  seconds: number;
  peakMiB: number;
  stdout: string;
}

/** Runs `cmd args` under GNU time (for the peak RSS) and times it; throws if it fails. */
export async function measure(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string> } = {},
): Promise<Measurement> {
  const t0 = performance.now();
  const r = await new Deno.Command("/usr/bin/time", {
    args: ["-f", "%M", cmd, ...args],
    env: opts.env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const seconds = (performance.now() - t0) / 1000;
  const err = new TextDecoder().decode(r.stderr).trim().split("\n");
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}): ${err.join(" ")}`);
  return { seconds, peakMiB: Number(err[err.length - 1]) / 1024, stdout: new TextDecoder().decode(r.stdout) };
}

/**
 * The best (lowest-time) of `n` runs, so one noisy run does not decide the ratio; its `peakMiB` is
 * the highest of all of them, as a memory limit holds for every run, not for the fastest.
 */
export async function best(n: number, run: () => Promise<Measurement>): Promise<Measurement> {
  return (await bestInTurns(n, run))[0];
}

/**
 * The best of `n` runs of each tool, taken in turns (ours, theirs, ours, …): the disk's speed
 * drifts during a bench, so tools compared in one run should meet the same conditions, not one
 * the first minute and another the next. Bests are in the order of `tools`, each with the highest
 * `peakMiB` of its tool's runs (see {@link best}).
 */
export async function bestInTurns(n: number, ...tools: (() => Promise<Measurement>)[]): Promise<Measurement[]> {
  const bests: (Measurement | null)[] = tools.map(() => null);
  const peaks = tools.map(() => 0);
  for (let i = 0; i < n; i++) {
    for (const [t, run] of tools.entries()) {
      const m = await run();
      peaks[t] = Math.max(peaks[t], m.peakMiB);
      if (!bests[t] || m.seconds < bests[t].seconds) bests[t] = m;
    }
  }
  return bests.map((b, t) => ({ ...b!, peakMiB: peaks[t] }));
}

/**
 * Runs `f` on a fresh ext4 loop mount of `sizeMiB` (its image under `dir`, default the temp dir),
 * unmounted and deleted after. Every timed run gets one of its own: skopeo's copy slows down by
 * half as its filesystem fills (4.7, 5.5, 7.2 s for three copies into one).
 */
export async function onFreshExt4<T>(sizeMiB: number, f: (mnt: string) => Promise<T>, dir?: string): Promise<T> {
  await using fs = await createLoopFs("ext4", { sizeMiB, dir });
  return await f(fs.mountPoint);
}

/** Writes `size` bytes of incompressible data to `path` in 1 MiB chunks. */
export function writeRandomFile(path: string, size: number): void {
  using f = Deno.openSync(path, { write: true, create: true, truncate: true });
  const buf = new Uint8Array(1 << 20);
  crypto.getRandomValues(buf.subarray(0, 65536));
  for (let i = 1; i < 16; i++) buf.copyWithin(i * 65536, 0, 65536);
  for (let done = 0, k = 0; done < size; k++) {
    new DataView(buf.buffer).setUint32(0, k); // every chunk differs
    const n = Math.min(buf.length, size - done);
    f.writeSync(buf.subarray(0, n));
    done += n;
  }
}
