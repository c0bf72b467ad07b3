/**
 * `bootcfs usr-overlay [--read-only]` (bootc-layout.md §3.15): a transient writable layer on the
 * booted system's `/usr`, for debugging or trying a change; gone at the next boot.
 *
 * @module
 */
import type { CommandBody } from "../cli/command.ts";
import { underRoot } from "../boot/host.ts";
import { UsageError } from "../error/mod.ts";
import { requireBooted } from "../deploy/status.ts";
import { mountUsrOverlay } from "../mount/usr_overlay.ts";
import { readStatus } from "./status.ts";

/** Where the overlay's upper and work directories go, on `/run` (a tmpfs). */
const STATE_DIR = "/run/bootcfs/usr-overlay";

/** `bootcfs usr-overlay`. */
export const usrOverlayCommand: CommandBody = {
  usage: "[--read-only]",
  description: "Mounts an overlayfs on /usr of the booted system at --root: the image's /usr below, a layer on " +
    `/run (${STATE_DIR}) above, so /usr can be changed now and every change is discarded at the next boot. ` +
    "With --read-only the overlay is mounted read-only (remount it read-write when needed). Does nothing when " +
    "/usr is already a mount point. `status` shows the overlay as usrOverlay.",
  options: { "read-only": { type: "boolean", help: "mount the overlay read-only" } },
  run(ctx, args) {
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument '${args.positionals[0]}'`);
    requireBooted(readStatus(ctx), ctx.globals.root);
    const readOnly = args.values["read-only"] === true;
    const usr = underRoot(ctx.globals.root, "/usr");
    if (mountUsrOverlay(usr, underRoot(ctx.globals.root, STATE_DIR), readOnly) === "already-mounted") {
      ctx.out.line(`${usr} is already a mount point; nothing done`);
      return;
    }
    ctx.out.line(`A ${readOnly ? "read-only" : "read/write"} overlayfs is now mounted on /usr`);
    ctx.out.line("All changes there will be discarded on reboot.");
  },
};
