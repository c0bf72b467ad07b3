/**
 * `bootcfs dump`: print the dumpfile of a composefs image exactly as C `composefs-info dump` does.
 *
 * @module
 */
import type { CommandBody } from "../cli/command.ts";
import { UsageError, withContext } from "../error/mod.ts";
import { dumpImage } from "../erofs/dump.ts";

/** The `dump` command. */
export const dumpCommand: CommandBody = {
  usage: "IMAGE",
  description: "Prints one line per file of IMAGE in composefs-dump(5) format, as C `composefs-info dump` " +
    "does: writer xattrs (metacopy, redirect, whiteout markers) hidden, trusted.overlay.overlay.* un-escaped, " +
    "hardlinks in the long form.",
  async run(ctx, args) {
    if (args.positionals.length !== 1) throw new UsageError("exactly one IMAGE is required");
    const path = args.positionals[0];
    await withContext(`dumping ${path}`, async () => {
      const bytes = await Deno.readFile(path);
      let batch = "";
      for (const line of dumpImage(bytes)) {
        batch += line + "\n";
        if (batch.length > 1 << 16) {
          ctx.out.write(batch);
          batch = "";
        }
      }
      ctx.out.write(batch);
    });
  },
};
