/**
 * Finalizing a staged deployment at shutdown (`bootc composefs-finalize-staged`, bootc-layout.md
 * §3.8): the three-way merge of `/etc` into the staged deployment's copy, then the staged menu
 * made the boot menu in one exchange, then the kernel directories no entry uses any more deleted
 * (§3.11 step 4, `kernel.ts`). GRUB with Type-1 entries only, as staging.
 *
 * @module
 */
import { hostBootContext, underRoot } from "../boot/host.ts";
import { activateStagedMenu, readAllEntries } from "../boot/menu_dir.ts";
import { removeIfExists } from "../runtime/files.ts";
import type { EtcDiff } from "./etc_diff.ts";
import { mergeEtc } from "./etc_merge.ts";
import { withDeploymentMounted } from "./image_mount.ts";
import { removeUnusedKernels } from "./kernel.ts";
import { type Host, requireBooted, requireGrubBls } from "./status.ts";

/** What {@link finalizeStaged} needs. */
export interface FinalizeOptions {
  /** The booted system (see `StageOptions.root`). */
  root: string;
  host: Host;
  /** The repository does not enforce fs-verity. */
  insecure: boolean;
}

/** What {@link finalizeStaged} did. */
export type FinalizeResult =
  | { finalized: false; reason: string }
  | { finalized: true; id: string; etc: EtcDiff; removedKernels: string[] };

/**
 * Finalizes the staged deployment of the booted system at `o.root`: nothing when none is staged
 * or it is download-only. Local changes to `/etc` since boot win over the new image's defaults.
 */
export async function finalizeStaged(o: FinalizeOptions): Promise<FinalizeResult> {
  const booted = requireBooted(o.host, o.root);
  const { staged } = o.host.status;
  if (staged === null) return { finalized: false, reason: "No staged deployment found" };
  if (staged.downloadOnly) {
    return { finalized: false, reason: "Staged deployment is marked download only. Won't finalize" };
  }
  requireGrubBls(staged, "finalizing");
  const id = staged.composefs.verity;
  const physical = hostBootContext(o.root).physicalRoot;
  const newEtc = `${physical}/state/deploy/${id}/etc`;
  const etc = await withDeploymentMounted(
    `${physical}/composefs`,
    booted.composefs.verity,
    o.insecure,
    (mnt) => mergeEtc(`${mnt}/etc`, underRoot(o.root, "/etc"), newEtc),
  );
  removeIfExists(`${newEtc}/.updated`, { recursive: true });
  const bootDir = `${physical}/boot`;
  activateStagedMenu(`${bootDir}/loader`);
  const removedKernels = removeUnusedKernels(bootDir, readAllEntries(`${bootDir}/loader`), booted.composefs.verity);
  return { finalized: true, id, etc, removedKernels };
}
