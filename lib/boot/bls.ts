/**
 * BLS Type-1 entry files (`loader/entries/*.conf`) as bootc writes and reads them
 * (bootc-layout.md §1.4, §1.5): parsing with bootc's rules, serialisation in bootc's key order,
 * file names, menu order, and the boot artifact an entry loads. Pure: text in, text out.
 *
 * @module
 */

/** Prefix of every boot artifact bootc ≥ 1.14 writes: Type-1 directories, UKIs, UKI addon directories. */
export const ARTIFACT_PREFIX = "bootc_composefs-";

/** One BLS entry. Keys bootc does not know are kept, in file order. */
export interface BlsEntry {
  title?: string;
  /** Mandatory in every entry. */
  version: string;
  /** Type-1: kernel path; exclusive with {@link efi}. */
  linux?: string;
  initrd: string[];
  options?: string;
  /** UKI: the PE path, under the key it was found with (`efi`, or `uki` of systemd-boot ≥ 258). */
  efi?: { key: "efi" | "uki"; path: string };
  machineId?: string;
  sortKey?: string;
  extras: [string, string][];
}

/**
 * The `key value` lines of a BLS entry or a GRUB menu entry body, as bootc reads both: lines
 * trimmed, empty and `#` lines skipped, split at the first space (a line without one is dropped),
 * the value trimmed.
 */
export function* keyValueLines(text: string): Generator<[string, string]> {
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const sp = line.indexOf(" ");
    if (sp >= 0) yield [line.slice(0, sp), line.slice(sp + 1).trim()];
  }
}

/**
 * Parses the text of a `.conf` entry ({@link keyValueLines}); `initrd` accumulates, other keys
 * take the last value.
 *
 * @example
 * ```ts
 * const e = parseBlsEntry("version 42\nlinux /boot/x/vmlinuz\ninitrd /boot/x/initrd\n");
 * e.initrd; // ["/boot/x/initrd"]
 * ```
 */
export function parseBlsEntry(text: string): BlsEntry {
  const fields = new Map<string, string>();
  const initrd: string[] = [];
  const extras = new Map<string, string>();
  let efi: BlsEntry["efi"];
  for (const [key, value] of keyValueLines(text)) {
    switch (key) {
      case "initrd":
        initrd.push(value);
        break;
      case "efi":
      case "uki":
        efi = { key, path: value };
        break;
      case "title":
      case "version":
      case "linux":
      case "options":
      case "machine-id":
      case "sort-key":
        fields.set(key, value);
        break;
      default:
        extras.delete(key);
        extras.set(key, value);
    }
  }
  const version = fields.get("version");
  if (version === undefined) throw new Error("BLS entry has no 'version'");
  const linux = fields.get("linux");
  if (linux !== undefined && efi) throw new Error("BLS entry has both 'linux' and 'efi'/'uki' values");
  if (linux === undefined && !efi) throw new Error("BLS entry has no 'linux', 'efi' or 'uki' value");
  return {
    title: fields.get("title"),
    version,
    linux,
    initrd,
    options: fields.get("options"),
    efi,
    machineId: fields.get("machine-id"),
    sortKey: fields.get("sort-key"),
    extras: [...extras],
  };
}

/** The text of an entry, keys in bootc's order, one `key value` line each. */
export function formatBlsEntry(e: BlsEntry): string {
  const lines: string[] = [];
  const put = (k: string, v: string | undefined) => {
    if (v !== undefined) lines.push(`${k} ${v}`);
  };
  put("title", e.title);
  put("version", e.version);
  if (e.efi) {
    put(e.efi.key, e.efi.path);
  } else {
    put("linux", e.linux);
    for (const i of e.initrd) put("initrd", i);
    put("options", e.options);
  }
  put("machine-id", e.machineId);
  put("sort-key", e.sortKey);
  for (const [k, v] of e.extras) put(k, v);
  return lines.map((l) => l + "\n").join("");
}

/** `bootc_<os_id>-<version>-<1|0>.conf`: 1 for the primary (default) entry, 0 for the secondary. */
export function blsFileName(osId: string, version: string, primary: boolean): string {
  return `bootc_${osId.replaceAll("-", "_")}-${version}-${primary ? 1 : 0}.conf`;
}

/** The sort key of an entry (systemd-boot sorts ascending): `bootc-<os_id>-0` for the primary, `-1` for the secondary. */
export function sortKey(osId: string, primary: boolean): string {
  return `bootc-${osId}-${primary ? 0 : 1}`;
}

/** A boot artifact's name: the deployment id (or shared directory) it is named for, and whether it has {@link ARTIFACT_PREFIX}. */
export interface ArtifactName {
  name: string;
  hasPrefix: boolean;
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

function unprefixed(name: string): ArtifactName {
  return name.startsWith(ARTIFACT_PREFIX)
    ? { name: name.slice(ARTIFACT_PREFIX.length), hasPrefix: true }
    : { name, hasPrefix: false };
}

/**
 * The boot artifact an entry loads, tolerating legacy names without the prefix: for Type-1 the
 * directory holding the kernel (which a later deployment may share), for a UKI its file name
 * without `.efi`.
 */
export function entryArtifact(e: BlsEntry): ArtifactName {
  if (e.efi) return efiArtifact(e.efi.path);
  const parts = e.linux!.split("/").filter((p) => p !== "");
  if (parts.length < 2) throw new Error(`kernel path ${e.linux} has no directory`);
  return unprefixed(parts[parts.length - 2]);
}

/** The artifact name of a UKI path (a BLS `efi` value or a GRUB `chainloader`), which must end in `.efi`. */
export function efiArtifact(path: string): ArtifactName {
  const file = basename(path);
  if (!file.endsWith(".efi")) throw new Error(`UKI path ${path} does not end in .efi`);
  return unprefixed(file.slice(0, -4));
}

/** Menu order of GRUB (and grub-cc) as bootc computes it: file names, descending, bytewise. */
export function grubFileOrder(a: string, b: string): number {
  return a < b ? 1 : a > b ? -1 : 0;
}
