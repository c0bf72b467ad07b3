/**
 * From argv to a finished command: finds the command in the tree, parses its options together
 * with the global ones (`node:util` parseArgs), prints `--help` at any level, runs it, and turns
 * any error into one line on stderr and an exit code (0 ok, 1 failure, 2 usage).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { errorChain, isUsageError, UsageError } from "../error/mod.ts";
import {
  type Args,
  type Command,
  type Context,
  GLOBAL_OPTIONS,
  type GlobalOptions,
  type LazyCommand,
  type OptionSpec,
} from "./command.ts";
import type { ProgressMode } from "./command.ts";
import { type Logger, processLogger } from "./log.ts";
import { createOutput, type Output } from "./output.ts";
import { createProgress, type ProgressReporter } from "./progress.ts";

/** Exit codes of every command. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** What {@link runCli} needs besides argv; tests replace the streams. */
export interface CliEnv {
  version: string;
  out?: Output;
  errWrite?: (s: string) => void;
  log?: (g: GlobalOptions) => Logger;
  progress?: (g: GlobalOptions) => ProgressReporter;
}

const PROGRESS_MODES: ProgressMode[] = ["auto", "tty", "plain", "json", "none"];

/** True if `tok` is an option that takes the next token as its value. */
function takesValue(tok: string, specs: Record<string, OptionSpec>): boolean {
  if (tok.includes("=")) return false;
  if (tok.startsWith("--")) return specs[tok.slice(2)]?.type === "string";
  const short = tok.slice(1);
  return short.length === 1 && Object.values(specs).some((s) => s.short === short && s.type === "string");
}

/** `c` itself, or for a {@link LazyCommand} its definition, imported now. */
async function loaded(c: Command | LazyCommand): Promise<Command> {
  if (!("load" in c)) return c;
  return { ...await c.load(), name: c.name, summary: c.summary };
}

/**
 * Walks argv down the command tree: the first positional that names a subcommand descends (and
 * loads it if it is lazy). Returns the path of commands and argv without the command names.
 */
export async function resolveCommand(root: Command, argv: string[]): Promise<{ path: Command[]; rest: string[] }> {
  const path = [root];
  const rest = [...argv];
  for (let cur = root; cur.subcommands?.length;) {
    const specs = { ...GLOBAL_OPTIONS, ...cur.options };
    let i = 0;
    while (i < rest.length && rest[i].startsWith("-") && rest[i] !== "-" && rest[i] !== "--") {
      i += takesValue(rest[i], specs) ? 2 : 1;
    }
    if (i >= rest.length || rest[i] === "--") break;
    const next = cur.subcommands.find((c) => c.name === rest[i]);
    if (!next) {
      throw new UsageError(`unknown command '${rest[i]}' for '${path.map((c) => c.name).join(" ")}'`);
    }
    rest.splice(i, 1);
    cur = await loaded(next);
    path.push(cur);
  }
  return { path, rest };
}

function optionLines(specs: Record<string, OptionSpec>): string[] {
  const rows = Object.entries(specs).map(([name, s]) => {
    const flag = `${s.short ? `-${s.short}, ` : "    "}--${name}${s.type === "string" ? ` ${s.value ?? "VALUE"}` : ""}`;
    return [flag, s.help + (s.default !== undefined && s.default !== false ? ` (default: ${s.default})` : "")];
  });
  const w = Math.max(0, ...rows.map((r) => r[0].length));
  return rows.map(([f, h]) => `  ${f.padEnd(w)}  ${h}`);
}

/** The `--help` text of the command at the end of `path`. */
export function helpText(path: Command[]): string {
  const cmd = path[path.length - 1];
  const name = path.map((c) => c.name).join(" ");
  const lines = [`${name} — ${cmd.summary}`, ""];
  if (cmd.subcommands?.length) {
    lines.push(`Usage: ${name} [OPTIONS] COMMAND`, "", "Commands:");
    const w = Math.max(...cmd.subcommands.map((c) => c.name.length));
    for (const c of cmd.subcommands) lines.push(`  ${c.name.padEnd(w)}  ${c.summary}`);
  } else {
    lines.push(`Usage: ${name} [OPTIONS]${cmd.usage ? ` ${cmd.usage}` : ""}`);
  }
  if (cmd.description) lines.push("", cmd.description.trim());
  if (cmd.options && Object.keys(cmd.options).length) lines.push("", "Options:", ...optionLines(cmd.options));
  lines.push("", "Global options:", ...optionLines(GLOBAL_OPTIONS));
  if (cmd.subcommands?.length) lines.push("", `Run '${name} COMMAND --help' for more on a command.`);
  return lines.join("\n") + "\n";
}

function toParseArgsOptions(specs: Record<string, OptionSpec>) {
  // deno-lint-ignore no-explicit-any
  const out: Record<string, any> = {};
  for (const [k, s] of Object.entries(specs)) {
    out[k] = { type: s.type, ...(s.short ? { short: s.short } : {}), ...(s.multiple ? { multiple: true } : {}) };
    if (s.default !== undefined) out[k].default = s.default;
  }
  return out;
}

/** Parses the leaf's argv into global options and the command's own {@link Args}. */
export function parseCommandArgs(cmd: Command, rest: string[]): { globals: GlobalOptions; args: Args; help: boolean } {
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options: toParseArgsOptions({ ...GLOBAL_OPTIONS, ...cmd.options }),
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional argument.*$/s, ""));
  }
  const v = parsed.values as Record<string, string | boolean | (string | boolean)[] | undefined>;
  const progress = (v.progress as string | undefined) ?? "auto";
  if (!PROGRESS_MODES.includes(progress as ProgressMode)) {
    throw new UsageError(`--progress must be one of ${PROGRESS_MODES.join(", ")}, not '${progress}'`);
  }
  const quiet = v.quiet === true;
  const globals: GlobalOptions = {
    root: (v.root as string | undefined) ?? "/",
    repo: v.repo as string | undefined,
    insecure: v.insecure === true,
    progress: quiet ? "none" : progress as ProgressMode,
    verbose: Array.isArray(v.verbose) ? v.verbose.length : 0,
    quiet,
  };
  const values: Args["values"] = {};
  for (const k of Object.keys(cmd.options ?? {})) values[k] = v[k] as Args["values"][string];
  return { globals, args: { values, positionals: parsed.positionals }, help: v.help === true };
}

/** Runs bootcfs with `argv` and returns the exit code. Never throws. */
export async function runCli(root: Command, argv: string[], env: CliEnv): Promise<number> {
  const errWrite = env.errWrite ?? ((s: string) => void Deno.stderr.writeSync(new TextEncoder().encode(s)));
  const out = env.out ?? createOutput();
  let name = root.name;
  try {
    if (argv[0] === "--version" || argv[0] === "-V") {
      out.line(`${root.name} ${env.version}`);
      return EXIT.ok;
    }
    const { path, rest } = await resolveCommand(root, argv);
    const cmd = path[path.length - 1];
    name = path.map((c) => c.name).join(" ");
    const { globals, args, help } = parseCommandArgs(cmd, rest);
    if (help || !cmd.run) {
      if (!help && !cmd.run) {
        errWrite(helpText(path));
        return EXIT.usage;
      }
      out.write(helpText(path));
      return EXIT.ok;
    }
    const log = env.log?.(globals) ?? processLogger(globals);
    const progress = env.progress?.(globals) ?? createProgress(globals.progress);
    const ctx: Context = { globals, out, log, progress };
    log.debug(`${name} ${env.version}`, { "bootcfs.command": name });
    try {
      return (await cmd.run(ctx, args)) ?? EXIT.ok;
    } catch (e) {
      if (isUsageError(e)) throw e;
      // Through the logger, so that under systemd the failure is a journal record with PRIORITY=3.
      log.error(errorChain(e), { "bootcfs.command": name });
      if (Deno.env.get("BOOTCFS_BACKTRACE") && e instanceof Error) errWrite(`${e.stack}\n`);
      return EXIT.failure;
    }
  } catch (e) {
    if (isUsageError(e)) {
      errWrite(`error: ${errorChain(e)}\nRun '${name} --help' for usage.\n`);
      return EXIT.usage;
    }
    errWrite(`error: ${errorChain(e)}\n`);
    return EXIT.failure;
  }
}
