/**
 * Staging a deployment on a booted system: the part of `bootc upgrade` and `bootc switch` after
 * the pull (bootc-layout.md §3.3 step 9, §3.4, §3.5, §3.6 "upgrade" mode, §1.7). GRUB with
 * Type-1 entries only; UKIs and systemd-boot are refused with the reason.
 *
 * Order, so that nothing half-made is ever booted or finalized: the boot image (deployment id)
 * and everything that can refuse it (kernel, kargs.d, the booted entry, the `/etc` merge
 * pre-check against the running system) come before any write; then the kernel directory (or the
 * booted one's, when the kernel is unchanged), the state renamed into place, one sync, the staged
 * menu (`loader/entries.staged`: the new entry and the booted one as secondary) replacing any
 * earlier one, and last the `/run/composefs/staged-deployment` marker that finalization acts on.
 * A refused staging leaves an earlier staged deployment as it was.
 *
 * @module
 */
import type { BlsEntry } from "../boot/bls.ts";
import { hostBootContext, readBlsEntries, underRoot } from "../boot/host.ts";
import { STAGED_ENTRIES, writeStagedMenu } from "../boot/menu_dir.ts";
import { stagedMenu, upgradeCmdline } from "../boot/menu_update.ts";
import { type1Entry } from "../boot/type1.ts";
import { ContextError } from "../error/mod.ts";
import { generateBootImage } from "../oci/boot_image.ts";
import type { Digest } from "../oci/digest.ts";
import type { ObjectId, Repository } from "../repository/mod.ts";
import { replaceFile, syncFilesystem } from "../runtime/durable.ts";
import { removeIfExists } from "../runtime/files.ts";
import { diffEtc } from "./etc_merge.ts";
import { withDeploymentMounted } from "./image_mount.ts";
import {
  findKernelDir,
  hostKargs,
  imageEntryNames,
  imageKargsOf,
  kernelBootDigest,
  kernelOf,
  writeKernelDir,
} from "./kernel.ts";
import { separateMount } from "./mount_spec.ts";
import { commitState, prepareState } from "./state.ts";
import {
  blsVerity,
  type BootEntry,
  formatStagedMarker,
  type Host,
  requireBooted,
  requireGrubBls,
  type StagedMarker,
} from "./status.ts";
import { STAGED_MARKER } from "./status_read.ts";

/** What {@link stageDeployment} needs. */
export interface StageOptions {
  /** The booted system: `/`, or a deployment mounted at a directory as the initramfs mounts it. */
  root: string;
  /** The system's repository, with the image pulled and tagged. */
  repo: Repository;
  manifestDigest: Digest;
  /** The image reference as pulled, recorded in the origin. */
  imgref: string;
  /** The system's status before staging. */
  host: Host;
  /** `switch`: a target equal to an existing deployment is an error, not "no changes". */
  switching: boolean;
  /** `--download-only`: finalization is locked until `upgrade --from-downloaded`. */
  downloadOnly?: boolean;
  log: (message: string) => void;
  /** Receives each path the `/etc` merge could not merge, as bootc prints it (`Unmergable …`). */
  unmergeable: (line: string) => void;
}

/** What {@link stageDeployment} did. */
export type StageResult =
  /** The image's deployment exists already (upgrade: nothing to do). */
  | { staged: false; id: ObjectId }
  | { staged: true; id: ObjectId; kernelShared: boolean; menu: string };

/** Every deployment of the status with the slot bootc names it by in a collision error. */
function deployments(host: Host): [string, BootEntry][] {
  const s = host.status;
  const slots: [string, BootEntry | null][] = [["Staged", s.staged], ["Booted", s.booted], ["Rollback", s.rollback]];
  return [...slots, ...(s.otherDeployments ?? []).map((e): [string, BootEntry] => ["Other", e])]
    .filter((x): x is [string, BootEntry] => x[1] !== null);
}

/** The booted deployment's Type-1 entry in `loader/entries` (the base of the new command line). */
function bootedEntry(entriesDir: string, booted: string): BlsEntry {
  for (const [, e] of readBlsEntries(entriesDir)) {
    if (!e.efi && blsVerity(e) === booted) return e;
  }
  throw new Error(`no entry in ${entriesDir} boots the booted deployment ${booted} (Booted BLS not found)`);
}

/**
 * Stages manifest `o.manifestDigest` as the next deployment of the booted system at `o.root`.
 * Unmergeable `/etc` changes are reported one by one and refused, with nothing written.
 */
export async function stageDeployment(o: StageOptions): Promise<StageResult> {
  const booted = requireBooted(o.host, o.root);
  requireGrubBls(booted, "upgrading");
  const ctx = hostBootContext(o.root);
  const physical = ctx.physicalRoot;
  const boot = await generateBootImage(o.repo, o.manifestDigest).catch((e) => {
    throw new ContextError(`building the boot image of ${o.manifestDigest}`, e);
  });
  o.log(`boot image ${boot.id}`);
  const existing = deployments(o.host).find(([, e]) => e.composefs.verity === boot.id);
  if (existing) {
    if (!o.switching) return { staged: false, id: boot.id };
    throw new Error(`Target image has the same fs-verity digest as the existing ${existing[0]} deployment.`);
  }

  // Everything that can refuse the image is read before anything is written.
  const kernel = kernelOf(boot.resources);
  const names = imageEntryNames(o.repo, kernel, boot.id);
  const bootDir = `${physical}/boot`;
  const loader = `${bootDir}/loader`;
  const current = bootedEntry(`${loader}/entries`, booted.composefs.verity);
  const cmdline = upgradeCmdline(
    current.options ?? "",
    boot.id,
    hostKargs(underRoot(o.root, "/usr/lib/bootc/kargs.d")),
    imageKargsOf(o.repo, boot.root),
  );

  const bootDigest = kernelBootDigest(o.repo, kernel);
  const origin = { imgref: o.imgref, manifestDigest: o.manifestDigest, bootDigest };
  const tmp = prepareState({ physicalRoot: physical, repo: o.repo, boot, origin, seedVar: false, log: o.log });
  try {
    await checkEtcMergeable(o, booted.composefs.verity, `${tmp}/etc`);
  } catch (e) {
    removeIfExists(tmp, { recursive: true });
    throw e;
  }

  const shared = findKernelDir(bootDir, bootDigest);
  if (shared === null) writeKernelDir(bootDir, boot.id, o.repo, kernel);
  else o.log(`the kernel is unchanged: sharing ${bootDir}/bootc_composefs-${shared}`);
  commitState(physical, boot.id, tmp);
  syncFilesystem(physical);
  const separateBoot = separateMount(bootDir) !== null;
  if (separateBoot) syncFilesystem(bootDir);

  const entry = type1Entry(shared ?? boot.id, names, cmdline, separateBoot ? "" : "/boot");
  writeStagedMenu(loader, stagedMenu(entry, current, names.osId));
  writeStagedMarker(o.root, { deplId: boot.id, finalizationLocked: o.downloadOnly ?? false });
  return { staged: true, id: boot.id, kernelShared: shared !== null, menu: `${loader}/${STAGED_ENTRIES}` };
}

/** Writes `/run/composefs/staged-deployment` (§2.3) of the system at `root`, atomically. */
function writeStagedMarker(root: string, marker: StagedMarker): void {
  const path = underRoot(root, STAGED_MARKER);
  Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  replaceFile(path, formatStagedMarker(marker));
}

/**
 * `upgrade --from-downloaded` (§3.3 step 4): the download-only staged deployment of the booted
 * system at `root` is unlocked, so that the next shutdown finalizes it. Returns its id, or null
 * when it was not download-only (nothing to do).
 */
export function releaseDownloaded(root: string, host: Host): string | null {
  requireBooted(host, root);
  const staged = host.status.staged;
  if (staged === null) throw new Error("No staged deployment found");
  if (!staged.downloadOnly) return null;
  writeStagedMarker(root, { deplId: staged.composefs.verity, finalizationLocked: false });
  return staged.composefs.verity;
}

/**
 * The `/etc` merge pre-check (§3.5 step 7): the booted image's pristine `/etc`, the running `/etc`
 * and the new one must merge at finalization; each unmergeable path is reported, then refused.
 */
async function checkEtcMergeable(o: StageOptions, booted: string, newEtc: string): Promise<void> {
  const conflicts = await withDeploymentMounted(
    o.repo.path,
    booted,
    o.repo.insecure,
    (mnt) => diffEtc(`${mnt}/etc`, underRoot(o.root, "/etc"), newEtc).conflicts,
  );
  for (const c of conflicts) o.unmergeable(`Unmergable ${c.reason}`);
  if (conflicts.length > 0) throw new Error("Merge conflicts found in etc");
}
