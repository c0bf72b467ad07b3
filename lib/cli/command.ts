/**
 * The shape of a bootcfs command: a tree of named commands, each with its own options, help text
 * and (for leaves) a `run` function that receives the parsed arguments and a {@link Context}.
 *
 * @module
 */
import type { Logger } from "./log.ts";
import type { Output } from "./output.ts";
import type { ProgressReporter } from "./progress.ts";

/** One option of a command, as `node:util` parseArgs takes it, plus the words for `--help`. */
export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
  default?: string | boolean | string[];
  /** Placeholder shown in help, e.g. `DIR`. */
  value?: string;
  help: string;
}

/** Parsed arguments of a leaf command. Global options are in {@link Context.globals}, not here. */
export interface Args {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/** How progress is shown: bars on a terminal, plain lines, JSON lines, or not at all. */
export type ProgressMode = "auto" | "tty" | "plain" | "json" | "none";

/** Options every command accepts (design: `--root`, `--repo`, `--insecure`, `--progress`, `-v`). */
export interface GlobalOptions {
  /** The target root (`/` on a booted host, a mounted sysroot otherwise). */
  root: string;
  /** An explicit repository directory; commands default it from `root` when absent. */
  repo?: string;
  /** Allow missing fs-verity (logged). */
  insecure: boolean;
  progress: ProgressMode;
  verbose: number;
  quiet: boolean;
}

/** What a running command gets besides its arguments. */
export interface Context {
  readonly globals: GlobalOptions;
  readonly out: Output;
  readonly log: Logger;
  readonly progress: ProgressReporter;
}

/** A command; a leaf has `run`, a group has `subcommands`. */
export interface Command extends CommandBody {
  name: string;
  /** One line for the parent's command list. */
  summary: string;
}

/**
 * A command named in its parent's list but defined in a module imported only when the command is
 * selected (to run it, show its help or descend into it), so that a run loads just the modules
 * its own command needs. `load` imports a {@link CommandBody}: the list holds name and summary.
 */
export interface LazyCommand {
  name: string;
  summary: string;
  load(): Promise<CommandBody>;
}

/** What a command is besides its name and summary. */
export interface CommandBody {
  /** Positional part of the usage line, e.g. `[--hash ALG] FILE…`. */
  usage?: string;
  /** Longer text for `--help`. */
  description?: string;
  options?: Record<string, OptionSpec>;
  subcommands?: (Command | LazyCommand)[];
  /** Returns the exit code (0 when nothing is returned). */
  run?(ctx: Context, args: Args): Promise<number | void> | number | void;
}

/** The options of {@link GlobalOptions}, accepted before or after the command name. */
export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  root: { type: "string", value: "DIR", help: "operate on the system mounted at DIR instead of /" },
  repo: { type: "string", value: "DIR", help: "composefs repository (default: ROOT/sysroot/composefs)" },
  insecure: { type: "boolean", help: "allow a filesystem without fs-verity (logged)" },
  progress: { type: "string", value: "MODE", help: "progress output: auto, tty, plain, json or none" },
  verbose: { type: "boolean", short: "v", multiple: true, help: "more log output (repeat for debug)" },
  quiet: { type: "boolean", short: "q", help: "print nothing but errors and results" },
  help: { type: "boolean", short: "h", help: "show this help" },
};

/** The repository directory a command should use: `--repo`, else `ROOT/sysroot/composefs`. */
export function repoPath(g: GlobalOptions): string {
  if (g.repo) return g.repo;
  return `${g.root.replace(/\/+$/, "")}/sysroot/composefs`;
}
