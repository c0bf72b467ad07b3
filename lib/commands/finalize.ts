/**
 * `bootcfs composefs-finalize-staged` (bootc-layout.md §3.8): run at shutdown (bootc runs it from
 * `ExecStop=` of `bootc-finalize-staged.service`), it merges `/etc` into the staged deployment and
 * makes the staged boot menu the boot menu.
 *
 * @module
 */
import type { CommandBody } from "../cli/command.ts";
import { physicalRootOf } from "../boot/host.ts";
import { UsageError } from "../error/mod.ts";
import { finalizeStaged } from "../deploy/finalize.ts";
import { lockDeployments } from "../deploy/lock.ts";
import { mountsInsecure } from "./repo.ts";
import { readStatus } from "./status.ts";

/** `bootcfs composefs-finalize-staged`. */
export const finalizeCommand: CommandBody = {
  usage: "[--json]",
  description: "Finalizes the staged deployment of the booted system at --root: three-way merges /etc (the " +
    "booted image's pristine /etc, the running /etc, the staged deployment's) into the staged deployment, so local " +
    "changes win, local deletions carry over and untouched files take the new image's defaults; then exchanges " +
    "loader/entries.staged with loader/entries in one rename and deletes kernel directories no entry uses. Does " +
    "nothing when nothing is staged or the staged deployment is download-only.",
  options: { json: { type: "boolean", help: "print the result as JSON" } },
  async run(ctx, args) {
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument '${args.positionals[0]}'`);
    using _lock = lockDeployments(physicalRootOf(ctx.globals.root));
    const host = readStatus(ctx);
    const insecure = mountsInsecure(ctx);
    const r = await finalizeStaged({ root: ctx.globals.root, host, insecure });
    if (!r.finalized) {
      ctx.log.info(r.reason, { "bootc.operation": "finalize" });
      if (args.values.json) ctx.out.json({ finalized: false, reason: r.reason });
      return;
    }
    ctx.log.info(`Finalized staged deployment ${r.id}`, { "bootc.operation": "finalize", "bootc.deployment": r.id });
    if (args.values.json) {
      ctx.out.json({ finalized: true, deployment: r.id, etc: r.etc, removedKernels: r.removedKernels });
      return;
    }
    ctx.out.line(`finalized ${r.id}`);
    ctx.out.line(
      `/etc: ${r.etc.added.length} added, ${r.etc.modified.length} modified, ${r.etc.removed.length} removed locally, carried over`,
    );
    for (const k of r.removedKernels) ctx.out.line(`removed kernel bootc_composefs-${k}`);
  },
};
