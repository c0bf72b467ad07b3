/**
 * The boot-artifact prefix migration on disk (bootc-layout.md §4.1, §7), run before every pull:
 * legacy unprefixed kernel directories and UKIs get the `bootc_composefs-` prefix and the menus
 * that name them are rewritten. The plan comes from `prefix_plan.ts`; this module reads the menus
 * and directories and carries it out crash-safely: new menus are written and synced beside the
 * live ones, the artifacts renamed (undone if a rename fails), then each menu switched with one
 * `renameat2(RENAME_EXCHANGE)` and the old copy deleted. A crash before a switch leaves the old
 * menu live and the next run heals it; on an up-to-date system this is a few directory reads.
 *
 * @module
 */
import { dirname } from "node:path";
import { RENAME_EXCHANGE, RENAME_NOREPLACE, renameat2 } from "../../ffi/libc.ts";
import { fsyncDir, writeSynced } from "../runtime/durable.ts";
import { writeMenuDir } from "./menu_dir.ts";
import { exists } from "../runtime/files.ts";
import { errorChain, withContextSync } from "../error/mod.ts";
import { type HostBootContext, hostBootContext, physicalRootOf, readBlsMenu } from "./host.ts";
import {
  type ArtifactDir,
  type Listings,
  MissingArtifactError,
  planBlsMigration,
  type PlanContext,
  planGrubMigration,
  type PrefixPlan,
} from "./prefix_plan.ts";

/** Suffix of the scratch copy a menu is built in before the switch. */
const SCRATCH = ".bootcfs-migrate";

/** What a migration did. */
export interface PrefixMigrationResult {
  /** Artifacts renamed. */
  renamed: string[];
  /** Menus rewritten (paths of `loader/entries`, `grub2/user.cfg`, …). */
  menus: string[];
}

function names(dir: string | null): Set<string> {
  if (dir === null || !exists(dir)) return new Set();
  return new Set([...Deno.readDirSync(dir)].map((e) => e.name));
}

/** One place a menu lives: a BLS `loader/` directory or GRUB's `grub2/`. */
interface MenuHome {
  dir: string;
  kind: "bls" | "grub";
  /** Where its Type-1 kernel directories are. */
  type1: string | null;
}

function homes(ctx: HostBootContext): MenuHome[] {
  const boot = `${ctx.physicalRoot}/boot`;
  const list: MenuHome[] = [{ dir: `${boot}/grub2`, kind: "grub", type1: null }];
  // An ESP mounted at /boot holds systemd-boot's entries, whose kernels are under EFI/Linux.
  if (ctx.esp !== boot) list.push({ dir: `${boot}/loader`, kind: "bls", type1: boot });
  if (ctx.esp) list.push({ dir: `${ctx.esp}/loader`, kind: "bls", type1: `${ctx.esp}/EFI/Linux` });
  return list;
}

/** Where each kind of artifact directory is for `home`. */
function artifactDirs(home: MenuHome, esp: string | null): Record<ArtifactDir, string | null> {
  return {
    type1: home.type1,
    uki: esp && `${esp}/EFI/Linux/bootc`,
    legacyUki: esp && `${esp}/EFI/Linux`,
  };
}

function plan(home: MenuHome, pc: PlanContext): PrefixPlan {
  if (home.kind === "bls") {
    const menus = new Map<string, Map<string, string>>();
    for (const m of ["entries", "entries.staged"]) {
      if (exists(`${home.dir}/${m}`)) menus.set(m, readBlsMenu(`${home.dir}/${m}`));
    }
    return planBlsMigration(menus, pc);
  }
  const menus = new Map<string, string>();
  for (const m of ["user.cfg", "user.cfg.staged"]) {
    if (exists(`${home.dir}/${m}`)) menus.set(m, Deno.readTextFileSync(`${home.dir}/${m}`));
  }
  return planGrubMigration(menus, pc);
}

/** Renames every artifact of the plan; on a failure the ones done are renamed back before the error is thrown. */
function renameArtifacts(p: PrefixPlan, dirs: Record<ArtifactDir, string | null>): string[] {
  const done: [string, string][] = [];
  try {
    for (const r of p.renames) {
      const from = `${dirs[r.from.dir]}/${r.from.name}`;
      const to = `${dirs[r.to.dir]}/${r.to.name}`;
      renameat2(from, to, RENAME_NOREPLACE);
      done.push([from, to]);
    }
  } catch (e) {
    const undo: string[] = [];
    for (const [from, to] of done.reverse()) {
      try {
        renameat2(to, from, RENAME_NOREPLACE);
      } catch (u) {
        undo.push(errorChain(u));
      }
    }
    if (undo.length > 0) throw new Error(`${errorChain(e)}; renaming back failed too: ${undo.join("; ")}`);
    throw e;
  }
  for (const dir of new Set(done.map(([, to]) => dirname(to)))) fsyncDir(dir);
  return done.map(([from, to]) => `${from} -> ${to}`);
}

/** Writes a menu's new files beside it (`<menu>.bootcfs-migrate`), synced. */
function writeScratch(home: MenuHome, menu: string, files: Map<string, string>): string {
  const scratch = `${home.dir}/${menu}${SCRATCH}`;
  if (home.kind === "grub") {
    writeSynced(scratch, files.get(menu)!);
    return scratch;
  }
  writeMenuDir(scratch, files);
  return scratch;
}

function migrateHome(home: MenuHome, ctx: HostBootContext): PrefixMigrationResult {
  const result: PrefixMigrationResult = { renamed: [], menus: [] };
  if (!exists(home.dir)) return result;
  // Scratch copies of a run that crashed before its switch: the live menus are still the old ones.
  for (const name of names(home.dir)) {
    if (name.endsWith(SCRATCH)) Deno.removeSync(`${home.dir}/${name}`, { recursive: true });
  }
  const dirs = artifactDirs(home, ctx.esp);
  // Read only when a legacy entry asks: an up-to-date system costs the menu reads alone.
  const cache = new Map<ArtifactDir, ReadonlySet<string>>();
  const listed = (k: ArtifactDir) => cache.get(k) ?? cache.set(k, names(dirs[k])).get(k)!;
  const listings: Listings = {
    get type1() {
      return listed("type1");
    },
    get uki() {
      return listed("uki");
    },
    get legacyUki() {
      return listed("legacyUki");
    },
  };
  let p: PrefixPlan;
  try {
    p = plan(home, { listings, osId: ctx.osId, booted: ctx.booted });
  } catch (e) {
    if (!(e instanceof MissingArtifactError && e.kind === "uki" && ctx.esp === null)) throw e;
    throw new Error(`${e.message} (no ESP is mounted at ${ctx.espCandidates.join(", ")})`);
  }
  if (p.menus.size === 0) return result;
  const scratch = [...p.menus].map(([menu, files]) => [menu, writeScratch(home, menu, files)]);
  fsyncDir(home.dir);
  result.renamed = renameArtifacts(p, dirs);
  for (const [menu, path] of scratch) {
    renameat2(path, `${home.dir}/${menu}`, RENAME_EXCHANGE);
    Deno.removeSync(path, { recursive: true });
    result.menus.push(`${home.dir}/${menu}`);
  }
  fsyncDir(home.dir);
  return result;
}

/**
 * Gives every legacy boot artifact of the system at `root` (`/` for the running one) the `bootc_composefs-` prefix and rewrites the
 * menus that name them (GRUB's BLS entries in `/boot`, systemd-boot's on the ESP, GRUB's
 * `user.cfg` for UKIs, and their staged copies). Only on a physical root with composefs
 * deployments (`state/deploy/`); entries of other systems are left as they are. Idempotent: a
 * second run finds nothing to do.
 *
 * @example
 * ```ts
 * const r = migrateBootPrefix("/");
 * if (r.menus.length) console.log(`migrated ${r.menus.join(", ")}`);
 * ```
 */
export function migrateBootPrefix(root: string): PrefixMigrationResult {
  const result: PrefixMigrationResult = { renamed: [], menus: [] };
  // No composefs deployment, nothing of bootc's to migrate: the menus belong to another system.
  if (!exists(`${physicalRootOf(root)}/state/deploy`)) return result;
  const ctx = hostBootContext(root);
  for (const home of homes(ctx)) {
    const r = withContextSync(`migrating the boot entries in ${home.dir}`, () => migrateHome(home, ctx));
    result.renamed.push(...r.renamed);
    result.menus.push(...r.menus);
  }
  return result;
}
