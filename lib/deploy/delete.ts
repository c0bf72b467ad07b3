/**
 * `bootc delete-deployment <id>` for GRUB with Type-1 entries (bootc-layout.md §3.12): the
 * deployment's boot entry goes (a queued rollback to it is undone first), then GC with
 * `pruneRepo` (gc.ts) removes its state directory, kernel, tag and objects. The booted deployment
 * cannot be deleted.
 *
 * One deliberate difference: deleting the staged deployment removes the staged marker first, then
 * the staged menu, so an interruption never leaves a marker whose menu is gone for finalization to
 * act on.
 *
 * @module
 */
import { hostBootContext, readBlsEntries, underRoot } from "../boot/host.ts";
import { STAGED_ENTRIES } from "../boot/menu_dir.ts";
import { withContextSync } from "../error/mod.ts";
import { fsyncDir } from "../runtime/durable.ts";
import { removeIfExists } from "../runtime/files.ts";
import { rollback } from "./rollback.ts";
import { blsVerity, type BootEntry, type Host, requireBooted, requireGrubBls } from "./status.ts";
import { STAGED_MARKER } from "./status_read.ts";

/** The slot a deleted deployment had. */
export type DeletedSlot = "staged" | "rollback" | "other";

/** What {@link deleteDeploymentEntry} did. */
export interface DeleteResult {
  slot: DeletedSlot;
  /** The boot entry file removed, or null when no entry named the deployment. */
  entry: string | null;
  /** A rollback to the deployment was queued, and was undone first. */
  unqueuedRollback: boolean;
}

/** The slot of deployment `id` in `host`, or an error naming why it cannot be deleted. */
function slotOf(host: Host, booted: BootEntry, id: string): [DeletedSlot, BootEntry] {
  if (id === booted.composefs.verity) throw new Error("Cannot delete currently booted deployment");
  const { staged, rollback, otherDeployments } = host.status;
  if (staged?.composefs.verity === id) return ["staged", staged];
  if (rollback?.composefs.verity === id) return ["rollback", rollback];
  const other = otherDeployments?.find((d) => d.composefs.verity === id);
  if (other !== undefined) return ["other", other];
  throw new Error(`Deployment ${id} not found`);
}

/** Removes the first entry of BLS directory `dir` that boots `id`; returns its path, or null. */
function removeEntryOf(dir: string, id: string): string | null {
  for (const [name, e] of readBlsEntries(dir)) {
    if (withContextSync(`boot entry ${dir}/${name}`, () => blsVerity(e)) !== id) continue;
    Deno.removeSync(`${dir}/${name}`);
    fsyncDir(dir);
    return `${dir}/${name}`;
  }
  return null;
}

/**
 * Removes deployment `id` from the boot menus of the booted system at `root`; its files are left
 * for GC ({@link collectDeployments} with `pruneRepo`).
 */
export function deleteDeploymentEntry(root: string, host: Host, id: string): DeleteResult {
  const booted = requireBooted(host, root);
  const [slot, target] = slotOf(host, booted, id);
  requireGrubBls(target, "deleting a deployment of");
  const loader = `${hostBootContext(root).physicalRoot}/boot/loader`;
  if (slot === "staged") {
    removeIfExists(underRoot(root, STAGED_MARKER));
    const entry = removeEntryOf(`${loader}/${STAGED_ENTRIES}`, id);
    removeIfExists(`${loader}/${STAGED_ENTRIES}`, { recursive: true });
    fsyncDir(loader);
    return { slot, entry, unqueuedRollback: false };
  }
  // The menu boots the rollback next: back to the booted deployment before its entry goes.
  const unqueuedRollback = slot === "rollback" && host.spec.bootOrder === "rollback";
  if (unqueuedRollback) rollback(root, host);
  return { slot, entry: removeEntryOf(`${loader}/entries`, id), unqueuedRollback };
}
