/**
 * `bootcfs internals …`: bootc's internal commands that bootcfs has. `composefs-gc`
 * (bootc-layout.md §3.11) collects what no deployment uses: kernel directories always, state
 * directories, bootc tags and repository objects with `--prune-repo`.
 *
 * @module
 */
import type { Command, CommandBody } from "../cli/command.ts";
import { physicalRootOf } from "../boot/host.ts";
import { UsageError } from "../error/mod.ts";
import { lockDeployments } from "../deploy/lock.ts";
import { requireBooted } from "../deploy/status.ts";
import { collectUnused, gcReport, removedAnything } from "./deployment_gc.ts";
import { openRepository } from "./repo.ts";
import { readStatus } from "./status.ts";

const composefsGcCommand: Command = {
  name: "composefs-gc",
  summary: "remove what no deployment uses (bootc internals composefs-gc)",
  usage: "[--dry-run] [--assert-no-op] [--prune-repo] [--json]",
  description: "Collects what no deployment of the booted system at --root uses, as bootc does after staging: " +
    "kernel directories no boot entry (live or staged) loads; with --prune-repo also state directories no entry " +
    "names, localhost/bootc-* tags no deployment's origin names (other tags are never touched), and the " +
    "repository objects only those kept. Deployments whose origin predates manifest digests get their tag first. " +
    "--dry-run deletes nothing (and does not count objects that only the tags it would remove keep); " +
    "--assert-no-op is a dry run that fails when anything would be removed.",
  options: {
    "dry-run": { type: "boolean", help: "only report what would be removed" },
    "assert-no-op": { type: "boolean", help: "dry run; exit 1 if anything would be removed" },
    "prune-repo": { type: "boolean", help: "also collect state directories, tags and objects" },
    json: { type: "boolean", help: "print the result as JSON" },
  },
  async run(ctx, args) {
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument '${args.positionals[0]}'`);
    const assertNoOp = args.values["assert-no-op"] === true;
    const dryRun = assertNoOp || args.values["dry-run"] === true;
    using _lock = lockDeployments(physicalRootOf(ctx.globals.root));
    const host = readStatus(ctx);
    requireBooted(host, ctx.globals.root);
    const repo = openRepository(ctx, { upgrade: true, readOnly: dryRun });
    try {
      const r = await collectUnused(ctx, repo, host, { pruneRepo: args.values["prune-repo"] === true, dryRun });
      if (args.values.json) ctx.out.json({ dryRun, ...r });
      else for (const line of gcReport(r, dryRun)) ctx.out.line(line);
      if (assertNoOp && removedAnything(r)) throw new Error("composefs-gc is not a no-op: it would remove the above");
    } finally {
      repo.close();
    }
  },
};

/** The `internals` command group. */
export const internalsCommand: CommandBody = {
  subcommands: [composefsGcCommand],
};
