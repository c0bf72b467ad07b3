/**
 * Planning the boot-artifact prefix migration (bootc-layout.md §4.1): systems installed before
 * bootc 1.14 have kernel directories and UKIs named `<digest>` instead of `bootc_composefs-<digest>`,
 * and menu entries pointing at them. The plan says which artifacts to rename and what every menu
 * file becomes. Pure: it sees the menus as parsed entries and the artifact directories as name
 * lists; `migrate.ts` does the I/O.
 *
 * Where bootc's migration loses data, this one does not (each case has a test): entries that
 * already carry the prefix stay in the menu, a crash between the renames and the menu switch is
 * healed on the next run instead of failing with "Directory … not found", two entries that
 * would get the same file name keep their own, UKIs still directly in `EFI/Linux/` (before bootc
 * 1.14 moved them to `EFI/Linux/bootc/`) are moved, staged menus are migrated too, and an entry
 * keeps its priority (primary or secondary) rather than the booted one becoming the primary.
 *
 * @module
 */
import {
  ARTIFACT_PREFIX,
  type BlsEntry,
  blsFileName,
  efiArtifact,
  entryArtifact,
  formatBlsEntry,
  grubFileOrder,
  parseBlsEntry,
} from "./bls.ts";
import { withContextSync } from "../error/mod.ts";
import { composefsKarg } from "./cmdline.ts";
import { formatUserCfg, parseUserCfg } from "./grub_menu.ts";

/** Where boot artifacts are, by kind. */
export type ArtifactDir = "type1" | "uki" | "legacyUki";

/** What an artifact directory holds (its entry names). */
export type Listings = Record<ArtifactDir, ReadonlySet<string>>;

/** One rename inside an artifact directory. `legacyUki` → `uki` moves a UKI into `EFI/Linux/bootc/`. */
export interface Rename {
  from: { dir: ArtifactDir; name: string };
  to: { dir: "type1" | "uki"; name: string };
}

/** What to do for one boot setup: renames first, then every menu in `menus` replaced by its new text. */
export interface PrefixPlan {
  renames: Rename[];
  /** Menu name (`entries`, `entries.staged`, `user.cfg`, …) → its new files (file name → text; one file for `user.cfg`). */
  menus: Map<string, Map<string, string>>;
}

/** UKI path of a deployment in its bootc ≥ 1.14 place. */
export function ukiPath(digest: string): string {
  return `/EFI/Linux/bootc/${ARTIFACT_PREFIX}${digest}.efi`;
}

/** A boot entry names an artifact that is not there. */
export class MissingArtifactError extends Error {
  constructor(readonly kind: "type1" | "uki", message: string) {
    super(message);
    this.name = "MissingArtifactError";
  }
}

/** Collects renames without duplicates (a shared kernel directory is renamed once). */
class Renames {
  readonly list: Rename[] = [];
  #seen = new Set<string>();

  add(r: Rename): void {
    const key = `${r.from.dir}/${r.from.name}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    this.list.push(r);
  }
}

/** Plans the rename of a Type-1 directory, unless a crash after the renames left it renamed already. */
function planType1(name: string, ls: Listings, renames: Renames): void {
  const prefixed = ARTIFACT_PREFIX + name;
  if (ls.type1.has(prefixed)) return;
  if (!ls.type1.has(name)) {
    throw new MissingArtifactError("type1", `kernel directory ${name} of a boot entry not found`);
  }
  renames.add({ from: { dir: "type1", name }, to: { dir: "type1", name: prefixed } });
}

/** Plans the renames of a UKI and its addon directory, from `EFI/Linux/bootc/` or the older `EFI/Linux/`. */
function planUki(digest: string, ls: Listings, renames: Renames): void {
  let found = ls.uki.has(`${ARTIFACT_PREFIX}${digest}.efi`);
  for (const dir of ["uki", "legacyUki"] as const) {
    for (const name of ls[dir]) {
      if (name.startsWith(ARTIFACT_PREFIX) || !name.includes(digest)) continue;
      if (!name.endsWith(".efi") && !name.endsWith(".efi.extra.d")) continue;
      if (name === `${digest}.efi`) found = true;
      const to = ARTIFACT_PREFIX + name;
      if (!ls.uki.has(to)) renames.add({ from: { dir, name }, to: { dir: "uki", name: to } });
    }
  }
  if (!found) throw new MissingArtifactError("uki", `UKI ${digest}.efi of a boot entry not found`);
}

/** `path` with every component equal to `from` replaced by `to`. */
function replaceComponent(path: string, from: string, to: string): string {
  return path.split("/").map((c) => c === from ? to : c).join("/");
}

/** The digest an entry boots, for telling the primary entry: `composefs=` where present, else the artifact name. */
function bootsDigest(e: BlsEntry, artifact: string): string {
  return composefsKarg(e.options ?? "")?.digest ?? artifact;
}

/** A UKI of a deployment is named for its digest: 64 hex (sha256 repositories) or 128 (sha512). */
const DIGEST = /^(?:[0-9a-f]{64}|[0-9a-f]{128})$/;

/** The digest of an unprefixed UKI path named for one, else null (prefixed, or not a deployment's). */
function legacyUkiDigest(path: string): string | null {
  if (!path.endsWith(".efi")) return null;
  const a = efiArtifact(path);
  return !a.hasPrefix && DIGEST.test(a.name) ? a.name : null;
}

/**
 * Whether an entry without the prefix boots a composefs deployment and so needs migrating: a
 * Type-1 entry with `composefs=`, a UKI named for a digest. Other entries (another OS's, a
 * kernel-install one) are carried over as they are.
 */
function isLegacy(e: BlsEntry): boolean {
  if (e.efi) return legacyUkiDigest(e.efi.path) !== null;
  return composefsKarg(e.options ?? "") !== null && !entryArtifact(e).hasPrefix;
}

/** Inputs common to every menu of a boot setup. */
export interface PlanContext {
  listings: Listings;
  /** `ID` of the running system's os-release (bootc's fallback: `bootc`). */
  osId: string;
  /**
   * The booted deployment: its entry in `entries` is the primary (`-1`) when the old file name
   * does not say; null on a target that is not booted.
   */
  booted: string | null;
}

/**
 * Plans the migration of BLS menus (`loader/entries` and, when present, `loader/entries.staged`),
 * each given as file name → text (an entry that does not parse is an error, as for bootc). Menus without a legacy entry are left out of the plan.
 */
export function planBlsMigration(menus: Map<string, Map<string, string>>, ctx: PlanContext): PrefixPlan {
  const renames = new Renames();
  const out = new Map<string, Map<string, string>>();
  for (const [menu, texts] of menus) {
    const entries = new Map(
      [...texts].map((
        [file, text],
      ) => [file, withContextSync(`boot entry ${menu}/${file}`, () => parseBlsEntry(text))]),
    );
    const legacy = [...entries].filter(([, e]) => isLegacy(e));
    if (legacy.length === 0) continue;
    const primary = (menu === "entries" && ctx.booted) || firstInMenu(new Map(legacy));
    const files = new Map<string, string>();
    // Entries that need nothing keep their names and bytes; the others are named as bootc names them now.
    for (const [file, e] of entries) if (!isLegacy(e)) files.set(file, texts.get(file)!);
    for (const [file, e] of legacy) {
      const { name } = entryArtifact(e);
      const moved = structuredClone(e);
      if (e.efi) {
        planUki(name, ctx.listings, renames);
        moved.efi = { key: e.efi.key, path: ukiPath(name) };
      } else {
        planType1(name, ctx.listings, renames);
        const to = ARTIFACT_PREFIX + name;
        moved.linux = replaceComponent(e.linux!, name, to);
        moved.initrd = e.initrd.map((p) => replaceComponent(p, name, to));
      }
      const wanted = blsFileName(ctx.osId, e.version, isPrimary(file, bootsDigest(e, name), primary));
      const target = [wanted, file].find((f) => !files.has(f));
      if (target === undefined) throw new Error(`two boot entries would both be named ${wanted}`);
      files.set(target, formatBlsEntry(moved));
    }
    out.set(menu, files);
  }
  return { renames: renames.list, menus: out };
}

/**
 * Whether an entry is its menu's primary: as its old file name says (`…-1.conf`), else if it boots
 * the menu's primary deployment. Keeping the old priority keeps a queued rollback queued, and the
 * new deployment of a staged menu first (bootc names every entry but the booted one secondary).
 */
function isPrimary(file: string, digest: string, primary: string): boolean {
  const m = /-([01])\.conf$/.exec(file);
  return m ? m[1] === "1" : digest === primary;
}

/** The digest the first entry of GRUB's menu order boots. */
function firstInMenu(entries: Map<string, BlsEntry>): string {
  const [file] = [...entries.keys()].sort(grubFileOrder);
  const e = entries.get(file)!;
  return bootsDigest(e, entryArtifact(e).name);
}

/**
 * Plans the migration of GRUB `user.cfg` menus (`user.cfg` and, when present, `user.cfg.staged`),
 * each given as its text: every chainloader points at the prefixed UKI afterwards.
 */
export function planGrubMigration(menus: Map<string, string>, ctx: PlanContext): PrefixPlan {
  const renames = new Renames();
  const out = new Map<string, Map<string, string>>();
  for (const [menu, text] of menus) {
    const entries = withContextSync(`reading ${menu}`, () => parseUserCfg(text));
    if (!entries.some((e) => legacyUkiDigest(e.chainloader) !== null)) continue;
    const moved = entries.map((e) => {
      const digest = legacyUkiDigest(e.chainloader);
      if (digest === null) return e;
      planUki(digest, ctx.listings, renames);
      return { ...e, chainloader: ukiPath(digest) };
    });
    out.set(menu, new Map([[menu, formatUserCfg(moved)]]));
  }
  return { renames: renames.list, menus: out };
}
