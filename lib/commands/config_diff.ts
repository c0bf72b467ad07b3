/**
 * `bootcfs config-diff` (bootc-layout.md §3.15): how the running `/etc` differs from the booted
 * image's pristine one — what a finalization would carry over to the next deployment.
 *
 * @module
 */
import type { CommandBody } from "../cli/command.ts";
import { physicalRootOf, underRoot } from "../boot/host.ts";
import { UsageError } from "../error/mod.ts";
import { diffEtc } from "../deploy/etc_merge.ts";
import { withDeploymentMounted } from "../deploy/image_mount.ts";
import { requireBooted } from "../deploy/status.ts";
import { mountsInsecure } from "./repo.ts";
import { readStatus } from "./status.ts";

/** `bootcfs config-diff`. */
export const configDiffCommand: CommandBody = {
  usage: "[--json]",
  description: "Lists how /etc of the booted system at --root differs from its image's /etc, mounted for the " +
    "moment: `Added: /etc/…` (everything below an added directory too), `Modified: /etc/…` (content, symlink " +
    "target, kind, mode, owner or xattrs; not the mtime) and `Removed: /etc/…`, parents before children. These " +
    "are the local changes that finalizing an update keeps.",
  options: { json: { type: "boolean", help: "print {added, modified, removed} as JSON" } },
  async run(ctx, args) {
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument '${args.positionals[0]}'`);
    const host = readStatus(ctx);
    const id = requireBooted(host, ctx.globals.root).composefs.verity;
    const insecure = mountsInsecure(ctx);
    const etc = underRoot(ctx.globals.root, "/etc");
    const { diff: raw } = await withDeploymentMounted(
      `${physicalRootOf(ctx.globals.root)}/composefs`,
      id,
      insecure,
      (mnt) => diffEtc(`${mnt}/etc`, etc, etc),
    );
    // Deployments never get the image's `.updated` (bootc leaves it out of their etc): not a local change.
    const diff = { ...raw, removed: raw.removed.filter((p) => p !== ".updated") };
    if (args.values.json) {
      ctx.out.json(diff);
      return;
    }
    for (
      const [word, paths] of [["Added", diff.added], ["Modified", diff.modified], ["Removed", diff.removed]] as const
    ) {
      for (const p of paths) ctx.out.line(`${word}: /etc/${p}`);
    }
  },
};
