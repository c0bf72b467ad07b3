/**
 * `bootcfs rollback` (bootc-layout.md §3.9): the next boot goes to the rollback deployment (or,
 * when a rollback is queued already, back to the current one); a staged deployment is dropped.
 *
 * @module
 */
import type { CommandBody } from "../cli/command.ts";
import { physicalRootOf } from "../boot/host.ts";
import { UsageError } from "../error/mod.ts";
import { lockDeployments } from "../deploy/lock.ts";
import { rollback } from "../deploy/rollback.ts";
import { readStatus } from "./status.ts";

/** `bootcfs rollback`. */
export const rollbackCommand: CommandBody = {
  usage: "[--json]",
  description: "Swaps the two entries of the boot menu of the booted system at --root, so that the rollback " +
    "deployment boots next; run again, it restores the order. A staged deployment is dropped (its state is left " +
    "for GC). GRUB with Type-1 entries only.",
  options: { json: { type: "boolean", help: "print the result as JSON" } },
  run(ctx, args) {
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument '${args.positionals[0]}'`);
    using _lock = lockDeployments(physicalRootOf(ctx.globals.root));
    const host = readStatus(ctx);
    const r = rollback(ctx.globals.root, host);
    if (r.droppedStaged !== null) {
      ctx.log.info(`Removing currently staged composefs deployment ${r.droppedStaged}`, {
        "bootc.operation": "rollback",
        "bootc.deployment": r.droppedStaged,
      });
    }
    if (args.values.json) {
      ctx.out.json({ nextBoot: r.reverting ? "current" : "rollback", droppedStaged: r.droppedStaged });
      return;
    }
    if (r.reverting) ctx.out.line("notice: Reverting queued rollback state");
    ctx.out.line(`Next boot: ${r.reverting ? "current" : "rollback"} deployment`);
  },
};
