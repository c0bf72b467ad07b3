/**
 * `bootc rollback` for GRUB with Type-1 entries (bootc-layout.md §3.9): the two entries of the
 * boot menu swap places, through a staged menu exchanged with the live one, and a staged
 * deployment is dropped (its state is left for GC). Doing it twice restores the first order.
 *
 * @module
 */
import { grubFileOrder } from "../boot/bls.ts";
import { hostBootContext, readBlsEntries, underRoot } from "../boot/host.ts";
import { activateStagedMenu, writeStagedMenu } from "../boot/menu_dir.ts";
import { rollbackMenu } from "../boot/menu_update.ts";
import { removeIfExists } from "../runtime/files.ts";
import { type Host, requireBooted, requireGrubBls } from "./status.ts";
import { STAGED_MARKER } from "./status_read.ts";

/** What {@link rollback} did. */
export interface RollbackResult {
  /** A rollback was queued already: the menu is back to booting the current deployment. */
  reverting: boolean;
  /** The staged deployment that was dropped, or null. */
  droppedStaged: string | null;
}

/** Swaps the first two entries of the boot menu of the booted system at `root`. */
export function rollback(root: string, host: Host): RollbackResult {
  const booted = requireBooted(host, root);
  const { rollback: target, staged } = host.status;
  if (target === null) throw new Error("No rollback available");
  requireGrubBls(booted, "rolling back");
  const loader = `${hostBootContext(root).physicalRoot}/boot/loader`;
  const live = readBlsEntries(`${loader}/entries`).sort(([a], [b]) => grubFileOrder(a, b)).map(([, e]) => e);
  const menu = rollbackMenu(live);
  // The staged deployment is dropped first: finalization must not act on a menu it did not stage.
  if (staged !== null) removeIfExists(underRoot(root, STAGED_MARKER));
  writeStagedMenu(loader, menu);
  activateStagedMenu(loader);
  return { reverting: host.spec.bootOrder === "rollback", droppedStaged: staged?.composefs.verity ?? null };
}
