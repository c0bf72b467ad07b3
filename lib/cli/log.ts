/**
 * Logging: human lines on stderr, or native journal records with structured fields when stderr is
 * the journal. Fields use bootc's names (`message_id`, `bootc.operation`, …).
 *
 * @module
 */
import { journalFieldName, JournalSender, stderrIsJournal } from "./journal.ts";

/** Log levels, most severe first; the number is the syslog priority journald stores. */
export const LEVELS = { error: 3, warn: 4, info: 5, debug: 6, trace: 7 } as const;
/** A log level name. */
export type Level = keyof typeof LEVELS;

/** Structured fields of a record: `message_id`, `bootc.operation`, digests, …; booleans logged as true/false. */
export type Fields = Record<string, string | number | boolean | undefined>;

/** What commands log through. */
export interface Logger {
  error(message: string, fields?: Fields): void;
  warn(message: string, fields?: Fields): void;
  info(message: string, fields?: Fields): void;
  debug(message: string, fields?: Fields): void;
  trace(message: string, fields?: Fields): void;
  /** True if records of `level` are emitted (to skip building expensive messages). */
  enabled(level: Level): boolean;
}

/** Where records go. */
export type LogSink = (level: Level, message: string, fields: Fields) => void;

/** Human-readable lines: `warning: …`, `error: …`, plain text for info, `debug: …` for the rest. */
export function stderrSink(write: (s: string) => void = (s) => Deno.stderr.writeSync(new TextEncoder().encode(s))) {
  const prefix: Record<Level, string> = {
    error: "error: ",
    warn: "warning: ",
    info: "",
    debug: "debug: ",
    trace: "trace: ",
  };
  return (level: Level, message: string) => write(`${prefix[level]}${message}\n`);
}

/** Native journal records: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER and every field as `F_<NAME>`. */
export function journalSink(sender: JournalSender, identifier = "bootcfs"): LogSink {
  return (level, message, fields) => {
    const rec: [string, string][] = [
      ["MESSAGE", message],
      ["PRIORITY", String(LEVELS[level])],
      ["SYSLOG_IDENTIFIER", identifier],
    ];
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) rec.push([journalFieldName(k), String(v)]);
    sender.send(rec);
  };
}

/** A logger that emits records up to `maxLevel` to `sink`. */
export function createLogger(sink: LogSink, maxLevel: Level): Logger {
  const max = LEVELS[maxLevel];
  const at = (level: Level) => (message: string, fields: Fields = {}) => {
    if (LEVELS[level] <= max) sink(level, message, fields);
  };
  return {
    error: at("error"),
    warn: at("warn"),
    info: at("info"),
    debug: at("debug"),
    trace: at("trace"),
    enabled: (level) => LEVELS[level] <= max,
  };
}

/**
 * The logger for this process: the journal when `$JOURNAL_STREAM` matches stderr (socket path
 * overridable with `$BOOTCFS_JOURNAL_SOCKET` for tests), stderr otherwise.
 */
export function processLogger(opts: { verbose: number; quiet: boolean }): Logger {
  const maxLevel: Level = opts.verbose >= 2 ? "trace" : opts.verbose === 1 ? "debug" : opts.quiet ? "warn" : "info";
  if (stderrIsJournal(Deno.env.get("JOURNAL_STREAM"))) {
    try {
      const path = Deno.env.get("BOOTCFS_JOURNAL_SOCKET");
      return createLogger(journalSink(new JournalSender(path || undefined)), maxLevel);
    } catch {
      // No socket support: fall back to stderr, which systemd also captures.
    }
  }
  return createLogger(stderrSink(), maxLevel);
}
