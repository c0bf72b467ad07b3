/**
 * How to run this same bootcfs again from outside (a systemd unit's `ExecStop=`): the compiled
 * binary itself, or `deno run` of this program's `main.ts` with the flags of the `bootcfs` task,
 * so that both forms start the same program.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { V8_FLAGS } from "./v8_flags.ts";

/** The argv that runs this bootcfs (append the command's arguments). */
export function selfCommand(execPath = Deno.execPath(), mainModule = Deno.mainModule): string[] {
  const exe = execPath.slice(execPath.lastIndexOf("/") + 1);
  if (exe !== "deno") return [execPath];
  return [execPath, "run", "--allow-all", "--quiet", `--v8-flags=${V8_FLAGS}`, fileURLToPath(mainModule)];
}
