/**
 * Progress on stderr: redrawn bars on a terminal, sparse plain lines in a pipe, JSON lines with
 * `--progress json`, nothing with `--progress none` or `--quiet`.
 *
 * @module
 */
import type { ProgressMode } from "./command.ts";

/** What a task counts: bytes are shown in MiB with a rate, items as plain numbers. */
export type Unit = "bytes" | "items";

/** One unit of work being reported (a blob being fetched, a layer being imported, …). */
export interface ProgressTask {
  /** Adds `n` to the amount done. */
  advance(n: number): void;
  /** Sets the amount done. */
  set(done: number): void;
  /** Sets or changes the total once it is known. */
  setTotal(total: number): void;
  /** Marks the task finished, with an optional final word ("skipped", "exists"). */
  done(note?: string): void;
}

/** Creates progress tasks. */
export interface ProgressReporter {
  task(label: string, opts?: { total?: number; unit?: Unit }): ProgressTask;
}

interface State {
  label: string;
  unit: Unit;
  done: number;
  total?: number;
  started: number;
  finished?: string;
}

const MiB = 1024 * 1024;

function amount(s: State): string {
  const fmt = (v: number) => s.unit === "bytes" ? (v / MiB).toFixed(1) : String(v);
  const suffix = s.unit === "bytes" ? " MiB" : "";
  return (s.total !== undefined ? `${fmt(s.done)}/${fmt(s.total)}` : fmt(s.done)) + suffix;
}

/** `label  12.0/27.0 MiB  44%  130.5 MiB/s`, the text shared by all modes. */
export function describe(s: State, now: number): string {
  const parts = [s.label, amount(s)];
  if (s.total) parts.push(`${Math.floor((100 * s.done) / s.total)}%`);
  const secs = (now - s.started) / 1000;
  if (s.unit === "bytes" && secs > 0.05) parts.push(`${(s.done / MiB / secs).toFixed(1)} MiB/s`);
  if (s.finished !== undefined) parts.push(s.finished || "done");
  return parts.join("  ");
}

function bar(s: State, width: number): string {
  if (!s.total) return " ".repeat(width + 2);
  const fill = Math.min(width, Math.round((width * s.done) / s.total));
  return `[${"#".repeat(fill)}${"-".repeat(width - fill)}]`;
}

type Render = (states: State[], s: State, event: "start" | "update" | "done") => void;

function reporter(render: Render, clock: () => number, minInterval: number): ProgressReporter {
  const states: State[] = [];
  let last = 0;
  return {
    task(label, opts = {}) {
      const s: State = { label, unit: opts.unit ?? "bytes", done: 0, total: opts.total, started: clock() };
      states.push(s);
      render(states, s, "start");
      const update = () => {
        const now = clock();
        if (now - last < minInterval) return;
        last = now;
        render(states, s, "update");
      };
      return {
        advance(n) {
          s.done += n;
          update();
        },
        set(d) {
          s.done = d;
          update();
        },
        setTotal(t) {
          s.total = t;
        },
        done(note) {
          if (s.finished !== undefined) return;
          s.finished = note ?? "";
          if (s.total !== undefined && note === undefined) s.done = Math.max(s.done, s.total);
          render(states, s, "done");
          const i = states.indexOf(s);
          if (i >= 0) states.splice(i, 1);
        },
      };
    },
  };
}

/** Options for {@link createProgress}; tests replace the writer and clock. */
export interface ProgressOptions {
  write?: (s: string) => void;
  clock?: () => number;
  isTerminal?: boolean;
  columns?: number;
}

/** The reporter for `mode` (`auto`: bars when stderr is a terminal, plain lines otherwise). */
export function createProgress(mode: ProgressMode, opts: ProgressOptions = {}): ProgressReporter {
  const write = opts.write ?? ((s: string) => void Deno.stderr.writeSync(new TextEncoder().encode(s)));
  const clock = opts.clock ?? (() => performance.now());
  const tty = opts.isTerminal ?? Deno.stderr.isTerminal();
  const effective = mode === "auto" ? (tty ? "tty" : "plain") : mode;
  switch (effective) {
    case "none":
      return reporter(() => {}, clock, Infinity);
    case "json":
      return reporter(
        (_all, s, event) => {
          const rec: Record<string, unknown> = {
            event: `progress.${event}`,
            task: s.label,
            unit: s.unit,
            done: s.done,
          };
          if (s.total !== undefined) rec.total = s.total;
          if (s.finished) rec.note = s.finished;
          write(JSON.stringify(rec) + "\n");
        },
        clock,
        250,
      );
    case "plain":
      // A pipe gets a start line, one line every 5 s at most, and an end line: enough for logs.
      return reporter((_all, s) => write(describe(s, clock()) + "\n"), clock, 5000);
    case "tty": {
      let drawn = 0;
      const columns = opts.columns ?? (() => {
        try {
          return Deno.consoleSize().columns;
        } catch {
          return 80;
        }
      })();
      return reporter(
        (all, s, event) => {
          let out = drawn ? `\x1b[${drawn}A` : "";
          if (event === "done") out += `\r\x1b[2K${describe(s, clock())}\n`;
          const live = all.filter((x) => x !== s || event !== "done");
          for (const x of live) out += `\r\x1b[2K${`${bar(x, 24)} ${describe(x, clock())}`.slice(0, columns - 1)}\n`;
          out += "\x1b[J";
          drawn = live.length;
          write(out);
        },
        clock,
        100,
      );
    }
    default:
      throw new Error(`unknown progress mode ${JSON.stringify(mode)}`);
  }
}
