/**
 * Runs bootcfs as a separate process, the way a user does: the compiled binary when
 * `$BOOTCFS_BIN` names one, else `deno run main.ts` (both must behave the same).
 */
import { selfCommand } from "../../lib/runtime/self.ts";

/** What a finished bootcfs process left behind. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The program and arguments that run `bootcfs ...args`: the compiled binary, or `deno run main.ts`
 * with the flags of the `bootcfs` task (as the finalize unit runs it: lib/runtime/self.ts).
 */
export function bootcfsCommand(args: string[]): [string, string[]] {
  const bin = Deno.env.get("BOOTCFS_BIN");
  if (bin) return [bin, args];
  const [cmd, ...pre] = selfCommand(Deno.execPath(), new URL("../../main.ts", import.meta.url).href);
  return [cmd, [...pre, ...args]];
}

/** Starts `bootcfs ...args` without waiting, stderr (and by default stdout) piped: for tests that interrupt it. */
export function spawnBootcfs(args: string[], opts: { stdout?: "piped" | "null" } = {}): Deno.ChildProcess {
  const [cmd, argv] = bootcfsCommand(args);
  return new Deno.Command(cmd, { args: argv, stdout: opts.stdout ?? "piped", stderr: "piped" }).spawn();
}

/** Runs `bootcfs ...args` and collects its output. */
export async function bootcfs(
  args: string[],
  opts: { env?: Record<string, string>; stdin?: Uint8Array; cwd?: string } = {},
): Promise<CliResult> {
  const [cmd, argv] = bootcfsCommand(args);
  const child = new Deno.Command(cmd, {
    args: argv,
    env: { NO_COLOR: "1", ...opts.env },
    cwd: opts.cwd,
    stdin: opts.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin) {
    const w = child.stdin.getWriter();
    await w.write(opts.stdin);
    await w.close();
  }
  const r = await child.output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

/** Runs an external tool and returns its stdout; throws with its stderr if it fails. */
export async function run(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<string> {
  const r = await new Deno.Command(cmd, { args, cwd: opts.cwd, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}): ${dec.decode(r.stderr)}`);
  return dec.decode(r.stdout);
}
