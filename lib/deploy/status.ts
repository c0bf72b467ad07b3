/**
 * `bootcfs status` without I/O (bootc-layout.md §3.10): boot menus as the source of truth, the
 * deployments they name put into slots (staged, booted, rollback, others), and the host document
 * built from them. `status_read.ts` gathers the texts and image facts this module works on;
 * `status_output.ts` writes the document in bootc's three forms.
 *
 * Where bootc's status is evidently not what was meant, bootcfs does what was meant (design:
 * upstream quirks; each has a test in tests/unit/deploy_status_test.ts):
 * - `rollbackQueued` is true when the first entry of the (non-staged) boot menu, in the order the
 *   bootloader shows it, is not the booted deployment (bootc-layout.md §10.1). Upstream reverses
 *   GRUB's order and negates the wrong test for systemd-boot UKIs, reporting a queued rollback in
 *   the normal post-upgrade state.
 * - `--booted` drops the other deployments too, not just staged and rollback.
 * - A `grub2/user.cfg` without menu entries (a GRUB password file) does not make a BLS system a
 *   UKI one (§10.16); `status_read.ts` applies this.
 * - The legacy `.imginfo` digest is the sha256 of the manifest as JavaScript re-serialises it,
 *   which is not what serde would write (§10.2): both are approximations of the registry digest.
 *
 * @module
 */
import { ARTIFACT_PREFIX, type BlsEntry, grubFileOrder, parseBlsEntry } from "../boot/bls.ts";
import { composefsKarg } from "../boot/cmdline.ts";
import { parseUserCfg } from "../boot/grub_menu.ts";
import { withContextSync } from "../error/mod.ts";
import { digestOf } from "../oci/digest.ts";
import type { LayerSize } from "../oci/manifest_diff.ts";
import { type ImageReference, type Origin, parseOriginReference } from "./origin.ts";

/** `message_id` of the warning for a menu entry whose deployment has no origin (bootc-layout.md §6). */
export const MISSING_ORIGIN_MESSAGE_ID = "d264f924dadb4c31bff0412107d391fb";

/** The bootloader, as bootc names it in status. */
export type Bootloader = "grub" | "grub-cc" | "systemd";

/** How a bootloader orders its BLS entries: GRUB by file name, systemd-boot by sort-key and version. */
export type MenuOrder = "grub" | "systemd";

/** The BLS ordering `bootloader` uses (grub-cc reads BLS entries from the ESP but sorts them as GRUB). */
export function menuOrderOf(bootloader: Bootloader): MenuOrder {
  return bootloader === "systemd" ? "systemd" : "grub";
}

/** A deployment named by one boot menu entry. */
export interface MenuEntry {
  /** The deployment id (`composefs=`, or the UKI's file name). */
  verity: string;
  /** From `entries.staged` / `user.cfg.staged`, not from the live menu. */
  staged: boolean;
}

/** `/run/composefs/staged-deployment`. */
export interface StagedMarker {
  deplId: string;
  /** `--download-only`: the staged deployment is not finalized at shutdown. */
  finalizationLocked: boolean;
}

/** The image facts status shows for a deployment, from the repository or a legacy `.imginfo`. */
export interface ImageInfo {
  /** Config `architecture`. */
  architecture: string;
  /** Config `created`. */
  created?: string;
  /** Manifest annotation `org.opencontainers.image.version`. */
  version?: string;
  /** The manifest digest (`sha256:…`, from the origin), or the legacy `.imginfo` digest. */
  digest: string;
  /** The manifest's layers (what `upgrade --check` compares). */
  layers: LayerSize[];
}

/** `image` of a boot entry. */
export interface ImageStatus {
  image: ImageReference;
  version: string | null;
  /** RFC 3339, UTC, as chrono serialises it. */
  timestamp: string | null;
  imageDigest: string;
  architecture: string;
}

/** `composefs` of a boot entry. */
export interface BootEntryComposefs {
  verity: string;
  bootType: "Bls" | "Uki";
  bootloader: Bootloader;
  bootDigest: string | null;
  missingVerityAllowed: boolean;
}

/** One deployment in the status document; keys in bootc's field order (YAML keeps it, JSON sorts). */
export interface BootEntry {
  image: ImageStatus | null;
  cachedUpdate: null;
  incompatible: boolean;
  pinned: boolean;
  softRebootCapable: boolean;
  downloadOnly: boolean;
  store: null;
  ostree: null;
  composefs: BootEntryComposefs;
}

/** `usrOverlay`: a transient overlay mounted on `/usr`. */
export interface UsrOverlay {
  accessMode: "readOnly" | "readWrite";
  persistence: "transient";
}

/** `status` of the host document. */
export interface HostStatus {
  staged: BootEntry | null;
  booted: BootEntry | null;
  rollback: BootEntry | null;
  /** Left out when empty, as bootc does. */
  otherDeployments?: BootEntry[];
  rollbackQueued: boolean;
  type: null;
  usrOverlay: UsrOverlay | null;
  readOnly: boolean;
}

/** The whole status document (`kind: BootcHost`). */
export interface Host {
  apiVersion: "org.containers.bootc/v1";
  kind: "BootcHost";
  metadata: { name: "host" };
  spec: { image: ImageReference | null; bootOrder: "default" | "rollback" };
  status: HostStatus;
}

// ---------------------------------------------------------------------------------------------
// Boot menus

/**
 * The bootloader from the `LoaderInfo` EFI variable's file (bootc-layout.md §1.11): a 4-byte
 * attribute header, then UTF-16LE. No variable (null) means GRUB, as upstream.
 */
export function bootloaderFromLoaderInfo(efivar: Uint8Array | null): Bootloader {
  if (efivar === null) return "grub";
  const text = new TextDecoder("utf-16le").decode(efivar.subarray(Math.min(4, efivar.length))).toLowerCase();
  if (text.includes("systemd-boot")) return "systemd";
  if (text.includes("grub cc")) return "grub-cc";
  return "grub";
}

/** The deployment a UKI path names; strict, as bootc's "verity of an entry": `bootc_composefs-<id>.efi`. */
function ukiVerity(path: string): string {
  const file = path.slice(path.lastIndexOf("/") + 1);
  if (!file.startsWith(ARTIFACT_PREFIX) || !file.endsWith(".efi") || file.length === ARTIFACT_PREFIX.length + 4) {
    throw new Error(`UKI path ${path} is not ${ARTIFACT_PREFIX}<id>.efi`);
  }
  return file.slice(ARTIFACT_PREFIX.length, -4);
}

/** The deployment a BLS entry boots: `composefs=` of a Type-1 entry, the UKI's name of an EFI one. */
export function blsVerity(e: BlsEntry): string {
  if (e.efi) return ukiVerity(e.efi.path);
  const karg = composefsKarg(e.options ?? "");
  if (!karg) throw new Error("the entry has no composefs= option");
  return karg.digest;
}

/** Which is the newer of two versions, by the UAPI Version Format Specification (systemd's `strverscmp_improved`). */
export function uapiVersionCompare(a: string, b: string): number {
  const cmp = <T extends number | boolean | string>(x: T, y: T) => (x < y ? -1 : x > y ? 1 : 0);
  if (a === "" || b === "") return cmp(a, b);
  const valid = (c: string | undefined) => c !== undefined && /[A-Za-z0-9~^.-]/.test(c);
  const digit = (c: string | undefined) => c !== undefined && c >= "0" && c <= "9";
  const alpha = (c: string | undefined) => c !== undefined && /[A-Za-z]/.test(c);
  let i = 0, j = 0;
  for (;;) {
    while (i < a.length && !valid(a[i])) i++;
    while (j < b.length && !valid(b[j])) j++;
    // '~' marks a pre-release: older than anything else.
    if (a[i] === "~" || b[j] === "~") {
      const r = cmp(a[i] !== "~", b[j] !== "~");
      if (r) return r;
      i++, j++;
    }
    if (i >= a.length || j >= b.length) return cmp(a.slice(i), b.slice(j));
    for (const sep of ["-", "^", "."]) {
      if (a[i] === sep || b[j] === sep) {
        const r = cmp(a[i] !== sep, b[j] !== sep);
        if (r) return r;
        i++, j++;
      }
    }
    let ii = i, jj = j;
    if (digit(a[i]) || digit(b[j])) {
      while (digit(a[ii])) ii++;
      while (digit(b[jj])) jj++;
      const r = cmp(i !== ii, j !== jj);
      if (r) return r;
      while (a[i] === "0") i++;
      while (b[j] === "0") j++;
      const r2 = cmp(ii - i, jj - j) || cmp(a.slice(i, ii), b.slice(j, jj));
      if (r2) return r2;
    } else {
      while (alpha(a[ii])) ii++;
      while (alpha(b[jj])) jj++;
      const n = Math.min(ii - i, jj - j);
      const r = cmp(a.slice(i, i + n), b.slice(j, j + n)) || cmp(ii - i, jj - j);
      if (r) return r;
    }
    i = ii, j = jj;
  }
}

/**
 * systemd-boot's menu order as bootc sorts it: `sort-key` ascending (when both have one), then
 * `machine-id` (when both have one), then the newer version first.
 */
export function systemdBootOrder(a: BlsEntry, b: BlsEntry): number {
  if (a.sortKey !== undefined && b.sortKey !== undefined && a.sortKey !== b.sortKey) {
    return a.sortKey < b.sortKey ? -1 : 1;
  }
  if (a.machineId !== undefined && b.machineId !== undefined && a.machineId !== b.machineId) {
    return a.machineId < b.machineId ? -1 : 1;
  }
  return -uapiVersionCompare(a.version, b.version);
}

function sortedBls(dir: string, files: ReadonlyMap<string, string>, order: MenuOrder): [string, BlsEntry][] {
  const parsed = [...files].map(([name, text]): [string, BlsEntry] => [
    `${dir}/${name}`,
    withContextSync(`boot entry ${dir}/${name}`, () => parseBlsEntry(text)),
  ]);
  parsed.sort(([x, ex], [y, ey]) => order === "grub" ? grubFileOrder(x, y) : systemdBootOrder(ex, ey));
  return parsed;
}

/**
 * The deployments of a BLS menu: `loader/entries` in the bootloader's order, then
 * `loader/entries.staged`. `live` and `staged` map `.conf` file names to their text; one that does
 * not parse is an error naming the file, as for bootc (any unparsable `.conf` aborts status).
 *
 * @example
 * ```ts
 * blsMenu(new Map([["bootc_os-1-1.conf", "version 1\nlinux /boot/x/vmlinuz\noptions composefs=ab\n"]]), new Map(), "grub");
 * // [{ verity: "ab", staged: false }]
 * ```
 */
export function blsMenu(
  live: ReadonlyMap<string, string>,
  staged: ReadonlyMap<string, string>,
  order: MenuOrder,
): MenuEntry[] {
  const menu = (dir: string, files: ReadonlyMap<string, string>, isStaged: boolean) =>
    sortedBls(dir, files, order).map(([name, e]) => ({
      verity: withContextSync(`boot entry ${name}`, () => blsVerity(e)),
      staged: isStaged,
    }));
  return [...menu("entries", live, false), ...menu("entries.staged", staged, true)];
}

/** The deployments of GRUB's `user.cfg` menu (UKIs) in file order, then those of `user.cfg.staged`. */
export function grubUkiMenu(userCfg: string, staged: string | null): MenuEntry[] {
  const menu = (name: string, text: string, isStaged: boolean) =>
    withContextSync(`reading ${name}`, () => parseUserCfg(text)).map((e) => ({
      verity: withContextSync(`${name}: menuentry "${e.title}"`, () => ukiVerity(e.chainloader)),
      staged: isStaged,
    }));
  return [...menu("user.cfg", userCfg, false), ...(staged === null ? [] : menu("user.cfg.staged", staged, true))];
}

/** Parses `/run/composefs/staged-deployment` (`{"depl_id":…,"finalization_locked":…}`). */
export function parseStagedMarker(text: string): StagedMarker {
  const j = JSON.parse(text) as { depl_id?: unknown; finalization_locked?: unknown };
  if (typeof j?.depl_id !== "string" || typeof j.finalization_locked !== "boolean") {
    throw new Error('expected {"depl_id": string, "finalization_locked": bool}');
  }
  return { deplId: j.depl_id, finalizationLocked: j.finalization_locked };
}

/** The text of `/run/composefs/staged-deployment`: RFC 8785 canonical JSON, as bootc writes it. */
export function formatStagedMarker(m: StagedMarker): string {
  return `{"depl_id":${JSON.stringify(m.deplId)},"finalization_locked":${m.finalizationLocked}}`;
}

// ---------------------------------------------------------------------------------------------
// Deployments

/**
 * The image facts of a legacy `<id>.imginfo` (`{"config": …, "manifest": …}`, bootc 1.12–1.15).
 * Its digest is, as upstream, the hex sha256 (no `sha256:`) of the manifest re-serialised — here
 * by `JSON.stringify`, which keeps the file's key order where serde would use its own, so the
 * value differs from bootc's (§10.2); neither is the registry's digest.
 */
export function legacyImageInfo(text: string): ImageInfo {
  const j = JSON.parse(text) as { config?: Record<string, unknown>; manifest?: Record<string, unknown> };
  if (typeof j?.config !== "object" || j.config === null || typeof j.manifest !== "object" || j.manifest === null) {
    throw new Error("expected a JSON object with 'config' and 'manifest' objects");
  }
  const str = (v: unknown) => (typeof v === "string" ? v : undefined);
  const annotations = j.manifest.annotations as Record<string, unknown> | undefined;
  const layers = Array.isArray(j.manifest.layers) ? j.manifest.layers as Record<string, unknown>[] : [];
  return {
    architecture: str(j.config.architecture) ?? "",
    created: str(j.config.created),
    version: str(annotations?.["org.opencontainers.image.version"]),
    digest: digestOf(new TextEncoder().encode(JSON.stringify(j.manifest))).slice("sha256:".length),
    layers: layers.map((l) => ({ digest: str(l?.digest) ?? "", size: typeof l?.size === "number" ? l.size : 0 })),
  };
}

/**
 * An RFC 3339 time in UTC as chrono writes a `DateTime<Utc>`: `Z`, and fractional seconds only
 * when not zero (3, 6 or 9 digits). Null when `t` is not RFC 3339 (bootc drops such a timestamp).
 */
export function rfc3339Utc(t: string): string | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|([+-])(\d{2}):(\d{2}))$/.exec(t);
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac, , sign, oh, om] = m;
  // setUTCFullYear, not Date.UTC: that maps years 0–99 to 1900–1999.
  const date = new Date(0);
  date.setUTCFullYear(+y, +mo - 1, +d);
  date.setUTCHours(+h, +mi, +s);
  const fields = [date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate(), date.getUTCHours()];
  if (fields.join() !== [+y, +mo, +d, +h].join() || date.getUTCMinutes() !== +mi || date.getUTCSeconds() !== +s) {
    return null; // 2023-02-30, 25:00; also a leap second, which chrono would keep (rare enough to drop)
  }
  if (sign) date.setTime(date.getTime() - (sign === "-" ? -1 : 1) * (+oh * 60 + +om) * 60_000);
  if (date.getUTCFullYear() > 9999 || date.getUTCFullYear() < 0) return null;
  const nanos = (frac ?? "").slice(0, 9).padEnd(9, "0");
  const digits = /^0+$/.test(nanos) ? 0 : nanos.endsWith("000000") ? 3 : nanos.endsWith("000") ? 6 : 9;
  const whole = date.toISOString().slice(0, 19);
  return `${whole}${digits ? "." + nanos.slice(0, digits) : ""}Z`;
}

/** What is known of one deployment for {@link bootEntry}. */
export interface DeploymentFacts {
  verity: string;
  origin: Origin;
  /** Image facts; null when the origin names no image (then `image` is null). */
  image: ImageInfo | null;
  bootloader: Bootloader;
  missingVerityAllowed: boolean;
}

/** A deployment's boot entry; the origin must say `boot_type`, as bootc requires. */
export function bootEntry(d: DeploymentFacts): BootEntry {
  if (d.origin.bootType === undefined) throw new Error("the origin has no [boot] boot_type");
  let image: ImageStatus | null = null;
  if (d.origin.imageReference !== undefined) {
    if (d.image === null) throw new Error("the origin names an image but no image facts were read");
    image = {
      image: parseOriginReference(d.origin.imageReference),
      version: d.image.version ?? null,
      timestamp: d.image.created === undefined ? null : rfc3339Utc(d.image.created),
      imageDigest: d.image.digest,
      architecture: d.image.architecture,
    };
  }
  return {
    image,
    cachedUpdate: null,
    incompatible: false,
    pinned: false,
    softRebootCapable: false,
    downloadOnly: false,
    store: null,
    ostree: null,
    composefs: {
      verity: d.verity,
      bootType: d.origin.bootType === "bls" ? "Bls" : "Uki",
      bootloader: d.bootloader,
      bootDigest: d.origin.bootDigest ?? null,
      missingVerityAllowed: d.missingVerityAllowed,
    },
  };
}

/** Everything {@link slotHost} puts together. */
export interface SlotInput {
  /** The live menu in boot order, then the staged menu (see {@link blsMenu}, {@link grubUkiMenu}). */
  menu: MenuEntry[];
  /** Boot entries by deployment id; menu entries without one (no origin) are left out. */
  entries: ReadonlyMap<string, BootEntry>;
  /** The booted deployment, or null when the system looked at is not the booted one. */
  booted: string | null;
  staged: StagedMarker | null;
  usrOverlay: UsrOverlay | null;
  readOnly: boolean;
}

/**
 * The status document: the booted deployment and the staged one (by the marker) in their slots;
 * of the others, those in the live menu, in menu order, become the rollback (the first) and
 * `otherDeployments` (the rest) — with no booted deployment there is no rollback and all of them
 * are others. Entries only in the staged menu that are not the staged deployment are left out.
 * `rollbackQueued`: the live menu's first entry is not the booted deployment.
 */
export function slotHost(input: SlotInput): Host {
  const { menu, entries } = input;
  const bootTypes = new Set(menu.flatMap((m) => entries.get(m.verity)?.composefs.bootType ?? []));
  if (bootTypes.size > 1) throw new Error("conflicting boot types: the menu has both BLS and UKI deployments");
  let booted: BootEntry | null = null;
  let staged: BootEntry | null = null;
  const candidates = new Set<string>();
  for (const m of menu) {
    const e = entries.get(m.verity);
    if (!e) continue;
    if (m.verity === input.booted) booted = e;
    else if (m.verity === input.staged?.deplId) staged = { ...e, downloadOnly: input.staged.finalizationLocked };
    else candidates.add(m.verity);
  }
  if (input.booted !== null && booted === null) {
    throw new Error(`the booted deployment ${input.booted} is not in the boot menu, or has no origin`);
  }
  const live = menu.filter((m) => !m.staged);
  const ordered = [...new Set(live.map((m) => m.verity))].filter((v) => candidates.has(v)).map((v) => entries.get(v)!);
  const rollback = booted ? ordered.shift() ?? null : null;
  const rollbackQueued = booted !== null && live.length > 0 && live[0].verity !== input.booted;
  return {
    apiVersion: "org.containers.bootc/v1",
    kind: "BootcHost",
    metadata: { name: "host" },
    spec: {
      image: (staged ?? booted)?.image?.image ?? null,
      bootOrder: rollbackQueued ? "rollback" : "default",
    },
    status: {
      staged,
      booted,
      rollback,
      ...(ordered.length > 0 ? { otherDeployments: ordered } : {}),
      rollbackQueued,
      type: null,
      usrOverlay: input.usrOverlay,
      readOnly: input.readOnly,
    },
  };
}

/**
 * The booted deployment of `host`: the commands that change a system (upgrade, switch, rollback,
 * finalize) refuse one that is not booted from composefs, as bootc does.
 */
export function requireBooted(host: Host, root: string): BootEntry {
  const booted = host.status.booted;
  if (booted === null) {
    throw new Error(`${root} is not a composefs-booted system (its root is not mounted from composefs:<id>)`);
  }
  return booted;
}

/**
 * Refuses a deployment whose menu the writing commands cannot handle yet: anything but GRUB with
 * Type-1 entries. `doing` names the command (`upgrading`, `rolling back`, …).
 */
export function requireGrubBls(entry: BootEntry, doing: string): void {
  const { bootloader, bootType } = entry.composefs;
  if (bootType !== "Bls" || bootloader !== "grub") {
    throw new Error(`${doing} a ${bootloader} system with ${bootType} entries is not supported yet`);
  }
}

/** `--booted`: the booted slot alone (staged, rollback and the others dropped). */
export function onlyBooted(host: Host): Host {
  const { otherDeployments: _, ...status } = host.status;
  return { ...host, status: { ...status, staged: null, rollback: null } };
}

// ---------------------------------------------------------------------------------------------
// Output
