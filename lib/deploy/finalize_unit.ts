/**
 * The shutdown half of staging (bootc-layout.md §1.7 step 5, §3.8): bootc starts
 * `bootc-finalize-staged.service` before it pulls, and the unit's `ExecStop=` runs
 * `composefs-finalize-staged` when the system goes down — without it a staged deployment is never
 * made the default. bootcfs writes its unit as a runtime unit (`/run/systemd/system`, gone at
 * reboot, nothing to install), with bootc's ordering and sandboxing, and starts it.
 *
 * @module
 */
import { isRunningRoot } from "../boot/host.ts";
import { replaceFile } from "../runtime/durable.ts";
import { exists } from "../runtime/files.ts";

/** The unit's name. */
export const FINALIZE_UNIT = "bootcfs-finalize-staged.service";

/** One `ExecStop=` word, quoted as systemd reads it (`%` and `$` doubled, `"` and `\` escaped). */
function unitWord(w: string): string {
  return `"${w.replace(/[\\"]/g, (c) => `\\${c}`).replace(/%/g, "%%").replace(/\$/g, "$$$$")}"`;
}

/** The unit file that runs `bootcfs composefs-finalize-staged` (`argv`: the bootcfs command) at shutdown. */
export function finalizeUnitText(argv: string[]): string {
  return [
    "[Unit]",
    "Description=Finalize the staged composefs deployment (bootcfs)",
    "DefaultDependencies=no",
    "RequiresMountsFor=/sysroot",
    "After=local-fs.target systemd-journal-flush.service",
    "Before=basic.target final.target",
    "Conflicts=final.target",
    "",
    "[Service]",
    "Type=oneshot",
    "RemainAfterExit=yes",
    `ExecStop=${[...argv, "composefs-finalize-staged"].map(unitWord).join(" ")}`,
    "TimeoutStopSec=5m",
    "ProtectHome=yes",
    "ReadOnlyPaths=/etc",
    "",
  ].join("\n");
}

/** Runs systemctl; its stderr is the error. */
async function systemctl(args: string[]): Promise<void> {
  const r = await new Deno.Command("systemctl", { args, stdout: "null", stderr: "piped" }).output();
  if (!r.success) throw new Error(`systemctl ${args.join(" ")}: ${new TextDecoder().decode(r.stderr).trim()}`);
}

/**
 * Starts the finalize unit on the running system; returns why not when `root` is not the running
 * system or systemd is not running (then `composefs-finalize-staged` must be run by hand).
 */
export async function startFinalizeUnit(root: string, argv: string[]): Promise<string | null> {
  if (!isRunningRoot(root)) return `${root} is not the running system`;
  if (!exists("/run/systemd/system")) return "systemd is not running";
  replaceFile(`/run/systemd/system/${FINALIZE_UNIT}`, finalizeUnitText(argv));
  await systemctl(["daemon-reload"]);
  await systemctl(["start", "--quiet", FINALIZE_UNIT]);
  return null;
}
