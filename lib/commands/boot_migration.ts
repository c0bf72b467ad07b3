/**
 * The boot-artifact prefix migration as commands run it (bootc-layout.md §3.0 step 7, §4.1):
 * before every pull, and before status reads the menus. Logged only when it did something.
 *
 * @module
 */
import { migrateBootPrefix } from "../boot/migrate.ts";
import type { Context } from "../cli/command.ts";

/** Runs the migration on `--root`; each rename at debug level, one info record when menus changed. */
export function migrateBoot(ctx: Context): void {
  const r = migrateBootPrefix(ctx.globals.root);
  for (const rename of r.renamed) ctx.log.debug(`renamed ${rename}`);
  if (r.menus.length > 0) {
    ctx.log.info(`Migrated boot entries to the bootc_composefs- prefix: ${r.menus.join(", ")}`, {
      "bootc.operation": "prefix-migration",
      "bootc.renamed": r.renamed.length,
    });
  }
}
