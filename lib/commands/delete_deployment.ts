/**
 * `bootcfs delete-deployment ID` (bootc-layout.md §3.12): the deployment's boot entry goes
 * (lib/deploy/delete.ts), then GC removes its state directory, kernel, tag and objects.
 *
 * @module
 */
import type { CommandBody } from "../cli/command.ts";
import { physicalRootOf } from "../boot/host.ts";
import { UsageError } from "../error/mod.ts";
import { deleteDeploymentEntry } from "../deploy/delete.ts";
import { lockDeployments } from "../deploy/lock.ts";
import { requireBooted } from "../deploy/status.ts";
import { collectUnused, gcReport } from "./deployment_gc.ts";
import { openRepository } from "./repo.ts";
import { readStatus } from "./status.ts";

/** `bootcfs delete-deployment`. */
export const deleteDeploymentCommand: CommandBody = {
  usage: "[--json] ID",
  description: "Deletes deployment ID (its composefs verity, as status shows it) of the booted system at --root: " +
    "its boot entry (a staged deployment: the staged menu and marker; a rollback that is queued to boot next: the " +
    "rollback is undone first), then, as bootc, everything no deployment uses any more: its state directory, " +
    "its kernel when no other entry loads it, its localhost/bootc-* tag and the objects only it kept. The booted " +
    "deployment cannot be deleted. GRUB with Type-1 entries only.",
  options: { json: { type: "boolean", help: "print the result as JSON" } },
  async run(ctx, args) {
    if (args.positionals.length !== 1) throw new UsageError(`expected ID, got ${args.positionals.length} argument(s)`);
    const id = args.positionals[0];
    using _lock = lockDeployments(physicalRootOf(ctx.globals.root));
    const host = readStatus(ctx);
    requireBooted(host, ctx.globals.root);
    const repo = openRepository(ctx, { upgrade: true });
    try {
      const d = deleteDeploymentEntry(ctx.globals.root, host, id);
      ctx.log.info(`Deleted the boot entry of deployment ${id}`, {
        "bootc.operation": "delete",
        "bootc.current_deployment": host.status.booted?.composefs.verity,
        "bootc.target_deployment": id,
      });
      const gc = await collectUnused(ctx, repo, host, { pruneRepo: true });
      if (args.values.json) {
        ctx.out.json({ deleted: id, ...d, gc });
        return;
      }
      if (d.unqueuedRollback) ctx.out.line("notice: Reverting queued rollback state");
      ctx.out.line(`deleted ${d.slot} deployment ${id}`);
      for (const line of gcReport(gc, false)) ctx.out.line(line);
    } finally {
      repo.close();
    }
  },
};
