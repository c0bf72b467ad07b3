/**
 * The Type-1 (BLS) boot entry bootc writes when it installs a deployment (bootc-layout.md §1.5,
 * §1.9, §3.6 "install" mode): its command line, its kernel directory and its `.conf`. Pure.
 *
 * @module
 */
import { ARTIFACT_PREFIX, type BlsEntry, blsFileName, formatBlsEntry, sortKey } from "./bls.ts";
import type { EntryNames } from "./os_release.ts";

/** What the kernel command line of a new installation is made of. */
export interface InstallCmdline {
  /** `root=` value (`UUID=…`), or null when the root is found by discoverable partitions. */
  rootSpec: string | null;
  /** `--karg` values, in order. */
  kargs: string[];
  /** The deployment id. */
  id: string;
  /** fs-verity optional: `composefs=?<id>`. */
  insecure: boolean;
  /** `systemd.mount-extra=…:/boot:…` for a separate `/boot`, else null. */
  bootMount: string | null;
  /** The image's kargs.d arguments (see `kargs_d.ts`). */
  imageKargs: string[];
}

/**
 * bootc's install command line: `root=… rw`, the `--karg`s, `composefs=[?]<id>`, the mount of a
 * separate `/boot`, then the image's kargs.d. (LUKS and `boot=` arguments are not produced.)
 */
export function installCmdline(c: InstallCmdline): string {
  const root = c.rootSpec === null ? [] : [`root=${c.rootSpec}`];
  const composefs = `composefs=${c.insecure ? "?" : ""}${c.id}`;
  return [...root, "rw", ...c.kargs, composefs, ...(c.bootMount ? [c.bootMount] : []), ...c.imageKargs].join(" ");
}

/** The directory (under the boot directory) holding a deployment's `vmlinuz` and `initrd`. */
export function kernelDirName(id: string): string {
  return `${ARTIFACT_PREFIX}${id}`;
}

/** A primary Type-1 entry for GRUB. */
export interface Type1Entry {
  fileName: string;
  text: string;
}

/**
 * The Type-1 entry for GRUB that boots the kernel in `bootc_composefs-<kernelId>` (the
 * deployment's own, or one it shares) with `cmdline`: paths under `/boot` (`pathPrefix`), or at
 * the root of a separate `/boot` partition (`""`); the primary sort key `bootc-<os_id>-0`.
 */
export function type1Entry(kernelId: string, names: EntryNames, cmdline: string, pathPrefix: string): BlsEntry {
  const dir = `${pathPrefix}/${kernelDirName(kernelId)}`;
  return {
    title: names.title,
    version: names.version,
    linux: `${dir}/vmlinuz`,
    initrd: [`${dir}/initrd`],
    options: cmdline,
    sortKey: sortKey(names.osId, true),
    extras: [],
  };
}

/** The primary entry of a new installation (see {@link type1Entry}), as its file name and text. */
export function primaryType1Entry(id: string, names: EntryNames, cmdline: string, pathPrefix: string): Type1Entry {
  const entry = type1Entry(id, names, cmdline, pathPrefix);
  return { fileName: blsFileName(names.osId, names.version, true), text: formatBlsEntry(entry) };
}
