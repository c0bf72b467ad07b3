/**
 * The composefs part of `bootc install to-filesystem` (bootc-layout.md §3.1 steps 5a, 5b, 5e, 5f;
 * §3.6 "install" mode), for an image already pulled into the target's repository: the boot image
 * (deployment id), the deployment's state (`state/deploy/<id>/` with `etc/`, `var` and
 * `<id>.origin`; the shared `/var` seeded from the image), the kernel directory and the GRUB BLS
 * entry that boots it. Installing the bootloader itself (bootupd, bootctl) is not bootcfs's job.
 *
 * Order, so that a crash never leaves an entry without what it boots: the kernel files (each
 * written beside, synced, renamed), the state under a temporary name then renamed, a sync of the
 * target (and of a separate `/boot`), and only then the entry, itself replaced atomically.
 *
 * @module
 */
import { primaryType1Entry } from "../boot/type1.ts";
import { ContextError } from "../error/mod.ts";
import { generateBootImage } from "../oci/boot_image.ts";
import type { Digest } from "../oci/digest.ts";
import type { ObjectId, Repository } from "../repository/mod.ts";
import { replaceFile, syncFilesystem } from "../runtime/durable.ts";
import { imageEntryNames, imageKargsOf, kernelBootDigest, kernelOf, writeKernelDir } from "./kernel.ts";
import { separateMount } from "./mount_spec.ts";
import { commitState, prepareState } from "./state.ts";

/** What {@link installDeployment} needs. */
export interface InstallOptions {
  /** The physical root being installed to (holds `composefs/`, `state/`, `boot/`). */
  target: string;
  /** The target's repository, with the image pulled and tagged. */
  repo: Repository;
  manifestDigest: Digest;
  /** The image reference as pulled (`docker://…`, `oci:…`), recorded in the origin. */
  imgref: string;
  /** The kernel command line for deployment `id` and the image's kargs.d arguments (`installCmdline`). */
  cmdline: (id: ObjectId, imageKargs: string[]) => string;
  log: (message: string) => void;
}

/** What an installation wrote. */
export interface InstallResult {
  /** The deployment id: the boot image's fs-verity digest. */
  id: ObjectId;
  /** Hex SHA-256 of vmlinuz followed by the initramfs. */
  bootDigest: string;
  kver: string;
  /** The BLS entry file written. */
  entry: string;
  stateDir: string;
}

/** Refuses a target that already has a deployment or a boot entry: install is for an empty root. */
export function checkEmptyTarget(target: string): void {
  for (const dir of [`${target}/state/deploy`, `${target}/boot/loader/entries`]) {
    let names: string[];
    try {
      names = [...Deno.readDirSync(dir)].map((e) => e.name);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw e;
    }
    if (names.length > 0) {
      throw new Error(
        `${dir} is not empty (${names.slice(0, 3).join(", ")}): install needs a root without deployments`,
      );
    }
  }
}

/** Installs manifest `o.manifestDigest` of `o.repo` as the target's first deployment. */
export async function installDeployment(o: InstallOptions): Promise<InstallResult> {
  checkEmptyTarget(o.target);
  const boot = await generateBootImage(o.repo, o.manifestDigest).catch((e) => {
    throw new ContextError(`building the boot image of ${o.manifestDigest}`, e);
  });
  o.log(`boot image ${boot.id}`);
  const kernel = kernelOf(boot.resources);
  const names = imageEntryNames(o.repo, kernel, boot.id);
  // Everything that can refuse the image is read before anything is written.
  const cmdline = o.cmdline(boot.id, imageKargsOf(o.repo, boot.root));

  const bootDir = `${o.target}/boot`;
  writeKernelDir(bootDir, boot.id, o.repo, kernel);
  const bootDigest = kernelBootDigest(o.repo, kernel);

  const origin = { imgref: o.imgref, manifestDigest: o.manifestDigest, bootDigest };
  const tmp = prepareState({ physicalRoot: o.target, repo: o.repo, boot, origin, seedVar: true, log: o.log });
  const stateDir = commitState(o.target, boot.id, tmp);
  // The copies of /etc and /var are not synced file by file: one syncfs before the entry exists.
  syncFilesystem(o.target);
  const separateBoot = separateMount(bootDir) !== null;
  if (separateBoot) syncFilesystem(bootDir);

  const entry = primaryType1Entry(boot.id, names, cmdline, separateBoot ? "" : "/boot");
  const entries = `${bootDir}/loader/entries`;
  Deno.mkdirSync(entries, { recursive: true });
  replaceFile(`${entries}/${entry.fileName}`, entry.text);
  return { id: boot.id, bootDigest, kver: kernel.kver, entry: `${entries}/${entry.fileName}`, stateDir };
}
