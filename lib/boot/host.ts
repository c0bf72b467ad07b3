/**
 * Where a host's boot files are and what it booted (bootc-layout.md §1.1, §1.9): the physical
 * root under `--root`, the mounted ESP, the booted deployment and the os-release `ID`. The
 * deciding logic is pure (mountinfo entries and file texts in); {@link hostBootContext} reads them.
 *
 * bootc finds the ESP by walking from the root's block device and mounts it privately; bootcfs
 * uses the ESP where the system mounts it (`/boot/efi`, `/efi`, or a vfat `/boot`), under the
 * physical root or under `--root`.
 *
 * @module
 */
import { withContextSync } from "../error/mod.ts";
import { type MountInfoEntry, readMountInfo } from "../mount/mountinfo.ts";
import { type BlsEntry, parseBlsEntry } from "./bls.ts";
import { entryNames, parseOsRelease } from "./os_release.ts";
import { exists, readTextIfExists } from "../runtime/files.ts";

/** The boot-related places and facts of the system bootcfs operates on. */
export interface HostBootContext {
  /** `<root>/sysroot`: holds `composefs/`, `state/` and `boot/`. */
  physicalRoot: string;
  /** The mounted ESP, or null. */
  esp: string | null;
  /** Where an ESP was looked for, for error messages. */
  espCandidates: string[];
  /**
   * The booted deployment's digest, when `root` is a composefs-booted system: `/` of the running
   * one, or a deployment mounted at `root` as the initramfs mounts it (source `composefs:<id>`).
   */
  booted: string | null;
  /** `ID` of the os-release of `root` (`bootc` without one), as bootc names entries. */
  osId: string;
}

/** `path` (absolute) under `root` (`/` for the running system). */
export function underRoot(root: string, path: string): string {
  return `${root.replace(/\/+$/, "")}${path}`;
}

/** The physical root of the system at `root`: `<root>/sysroot`. */
export function physicalRootOf(root: string): string {
  return underRoot(root, "/sysroot");
}

/** Paths where the ESP may be mounted for `root`, in the order they are tried. */
export function espCandidates(root: string): string[] {
  const sysroot = physicalRootOf(root);
  const list = [`${sysroot}/boot/efi`, `${sysroot}/efi`, underRoot(root, "/boot/efi"), underRoot(root, "/efi")];
  return [...new Set([...list, underRoot(root, "/boot")])];
}

/** The first candidate that is a mount point (`…/boot` only when it is vfat: else it is GRUB's `/boot`). */
export function findEsp(candidates: string[], mounts: MountInfoEntry[]): string | null {
  for (const path of candidates) {
    const m = mounts.findLast((e) => e.mountPoint === path);
    if (m && (!path.endsWith("/boot") || m.fsType === "vfat")) return path;
  }
  return null;
}

/**
 * The booted deployment, from `/`'s mount source (`composefs:<hex>`, or
 * `transient:composefs=<hex>`): after a soft reboot it is right where the command line is not.
 * Null when `/` is not composefs.
 */
export function bootedDeployment(rootSource: string): string | null {
  return /^(?:composefs:|transient:composefs=)\??([0-9a-f]+)$/.exec(rootSource)?.[1] ?? null;
}

/** `ID` of an os-release text, unquoted; `bootc` when absent. */
export function osReleaseId(text: string | null): string {
  return entryNames(text === null ? null : parseOsRelease(text), "").osId;
}

/** The `.conf` files of a BLS entries directory (name → text, in name order); empty when it does not exist. */
export function readBlsMenu(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  if (!exists(dir)) return files;
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".conf")).sort();
  for (const name of names) files.set(name, Deno.readTextFileSync(`${dir}/${name}`));
  return files;
}

/** The parsed `.conf` entries of a BLS entries directory, in name order; an unparsable one is an error naming it. */
export function readBlsEntries(dir: string): [string, BlsEntry][] {
  return [...readBlsMenu(dir)].map(([name, text]) => [
    name,
    withContextSync(`boot entry ${dir}/${name}`, () => parseBlsEntry(text)),
  ]);
}

/** Whether `root` names the running system's `/`. */
export function isRunningRoot(root: string): boolean {
  return root.replace(/\/+$/, "") === "";
}

/** The deployment mounted at `root` (its topmost mount), or null when `root` is not a composefs mount. */
function bootedAt(root: string, mounts: MountInfoEntry[]): string | null {
  let path: string;
  try {
    path = Deno.realPathSync(root);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  return bootedDeployment(mounts.findLast((e) => e.mountPoint === path)?.source ?? "");
}

/**
 * Reads what {@link HostBootContext} says about `root`: `/` for the running system, or the
 * directory a system is mounted at (a deployment mounted the way the initramfs does, or a target
 * that was never booted).
 */
export function hostBootContext(root: string): HostBootContext {
  const mounts = readMountInfo();
  const candidates = espCandidates(root);
  const booted = bootedAt(isRunningRoot(root) ? "/" : root, mounts);
  return {
    physicalRoot: physicalRootOf(root),
    esp: findEsp(candidates, mounts),
    espCandidates: candidates,
    booted,
    osId: osReleaseId(readTextIfExists(underRoot(root, "/usr/lib/os-release"))),
  };
}
