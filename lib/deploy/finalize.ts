/**
 * Finalizing a staged deployment at shutdown (`bootc composefs-finalize-staged`, bootc-layout.md
 * §3.8): the three-way merge of `/etc` into the staged deployment's copy, then the staged menu
 * made the boot menu in one exchange, then the kernel directories no entry uses any more deleted
 * (§3.11 step 4). GRUB with Type-1 entries only, as staging.
 *
 * @module
 */
import { ARTIFACT_PREFIX, entryArtifact, parseBlsEntry } from "../boot/bls.ts";
import { kernelDirName } from "../boot/type1.ts";
import { hostBootContext, readBlsMenu, underRoot } from "../boot/host.ts";
import { activateStagedMenu, STAGED_ENTRIES } from "../boot/menu_dir.ts";
import { withContextSync } from "../error/mod.ts";
import { fsyncDir } from "../runtime/durable.ts";
import { exists, removeIfExists } from "../runtime/files.ts";
import type { EtcDiff } from "./etc_diff.ts";
import { mergeEtc } from "./etc_merge.ts";
import { withDeploymentMounted } from "./image_mount.ts";
import { type Host, requireBooted } from "./status.ts";

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
 * The `bootc_composefs-<x>` directories of `bootDir` that no entry of `loader/entries` or
 * `loader/entries.staged` loads its kernel from, deleted (§3.11 step 4, Type-1). Deleting the
 * booted deployment's would make it unbootable: that is an error.
 */
export function removeUnusedKernels(bootDir: string, booted: string | null): string[] {
  const used = new Set<string>();
  for (const menu of ["entries", STAGED_ENTRIES]) {
    const dir = `${bootDir}/loader/${menu}`;
    for (const [name, text] of readBlsMenu(dir)) {
      used.add(withContextSync(`boot entry ${dir}/${name}`, () => entryArtifact(parseBlsEntry(text))).name);
    }
  }
  if (!exists(bootDir)) return [];
  const unused = [...Deno.readDirSync(bootDir)]
    .filter((e) => e.isDirectory && e.name.startsWith(ARTIFACT_PREFIX))
    .map((e) => e.name.slice(ARTIFACT_PREFIX.length))
    .filter((id) => !used.has(id))
    .sort();
  if (booted !== null && unused.includes(booted)) {
    throw new Error(`Inconsistent state: no entry uses the booted deployment's kernel ${kernelDirName(booted)}`);
  }
  for (const id of unused) Deno.removeSync(`${bootDir}/${kernelDirName(id)}`, { recursive: true });
  if (unused.length > 0) fsyncDir(bootDir);
  return unused;
}

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
  if (staged.composefs.bootType !== "Bls" || staged.composefs.bootloader !== "grub") {
    throw new Error(
      `finalizing ${staged.composefs.bootType} deployments for ${staged.composefs.bootloader} is not supported yet`,
    );
  }
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
  const removedKernels = removeUnusedKernels(bootDir, booted.composefs.verity);
  return { finalized: true, id, etc, removedKernels };
}
