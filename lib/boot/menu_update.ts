/**
 * The BLS menus bootc writes after install (bootc-layout.md §1.5, §1.7, §3.6 "upgrade" mode,
 * §3.9): the command line of a staged deployment, derived from the booted one; the staged menu
 * (the new primary entry and the booted entry as secondary); and the two entries of a rollback.
 * Pure: entries and texts in, file names and texts out.
 *
 * One deliberate difference (design: do what was meant): GRUB orders BLS entries by file name
 * (`bootc_<os>-<version>-<1|0>.conf`, name-version-release), so upstream's secondary entry, named
 * with its own version, sorts *first* whenever its version is higher — a switch to an image with a
 * lower version, or a rollback between versions, would keep booting the old deployment. bootcfs
 * names both entries of a menu with the primary's version, so the `-1` entry is first for GRUB's
 * rpmvercmp, for bootc's bytewise order and for systemd-boot's sort keys alike. The entries' own
 * `version` lines are unchanged.
 *
 * @module
 */
import { type BlsEntry, blsFileName, formatBlsEntry, sortKey } from "./bls.ts";

/**
 * Splits a command line into arguments as the kernel does: at spaces, except inside double
 * quotes (`foo="a b"` is one argument).
 */
export function splitCmdline(cmdline: string): string[] {
  const args: string[] = [];
  let cur = "";
  let quoted = false;
  for (const c of cmdline) {
    if (c === '"') quoted = !quoted;
    if (!quoted && /\s/.test(c)) {
      if (cur !== "") args.push(cur);
      cur = "";
    } else {
      cur += c;
    }
  }
  if (quoted) throw new Error(`unterminated quote in kernel command line: ${cmdline}`);
  if (cur !== "") args.push(cur);
  return args;
}

/**
 * The command line of a staged deployment (§3.6 steps 1–2): the booted entry's `options` with
 * `composefs=` pointing at `id` in place (its `?` kept), then the kargs.d change between the
 * images: arguments of the booted image's kargs.d (`oldImage`) that the new one (`newImage`) no
 * longer has are removed, new ones appended. Arguments added by hand are kept.
 */
export function upgradeCmdline(booted: string, id: string, oldImage: string[], newImage: string[]): string {
  const args = splitCmdline(booted);
  const i = args.findIndex((a) => a.startsWith("composefs="));
  if (i < 0) throw new Error("the booted entry's options have no composefs= argument");
  args[i] = `composefs=${args[i].startsWith("composefs=?") ? "?" : ""}${id}`;
  const keep = new Set(newImage);
  const had = new Set(oldImage);
  const kept = args.filter((a) => !had.has(a) || keep.has(a));
  return [...kept, ...newImage.filter((a) => !had.has(a))].join(" ");
}

/** A menu as files: `.conf` name → text. */
export type MenuFiles = Map<string, string>;

/**
 * The staged menu of an upgrade or switch (§1.7 item 2, §3.6 step 8): the new primary entry and
 * the booted entry as secondary, both named with the new image's `os_id` and (see the module
 * doc) the new entry's version.
 */
export function stagedMenu(primary: BlsEntry, booted: BlsEntry, osId: string): MenuFiles {
  return new Map([
    [blsFileName(osId, primary.version, true), formatBlsEntry({ ...primary, sortKey: sortKey(osId, true) })],
    [blsFileName(osId, primary.version, false), formatBlsEntry({ ...booted, sortKey: sortKey(osId, false) })],
  ]);
}

/**
 * The menu after `bootc rollback` (§3.9 step 5): of the two entries, in boot-menu order, the
 * second becomes the primary and the first the secondary, under bootc's fixed `os_id` `bootc`.
 * Anything but two entries is refused (upstream asserts it).
 */
export function rollbackMenu(menuOrder: BlsEntry[]): MenuFiles {
  if (menuOrder.length !== 2) {
    throw new Error(`rollback needs exactly 2 boot entries, the menu has ${menuOrder.length}`);
  }
  const [current, rollback] = menuOrder;
  return stagedMenu(rollback, current, "bootc");
}
