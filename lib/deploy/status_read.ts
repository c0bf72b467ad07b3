/**
 * Reads what `bootcfs status` reports about the system at a root (bootc-layout.md §3.10): the
 * bootloader, its menus (GRUB's `boot/loader/entries` or `boot/grub2/user.cfg`, or systemd-boot's
 * on the ESP, with their staged copies), each named deployment's origin and image facts (from the
 * repository by the origin's manifest digest, else a legacy `.imginfo`), and — for a booted
 * system — the booted deployment, the staged marker, the kernel command line's `?` and the `/usr`
 * overlay. Nothing is written. `status.ts` turns the result into the status document.
 *
 * A root is booted when it is a composefs mount (`/` of the running system, or `--root DIR` with
 * a deployment mounted at DIR as the initramfs mounts it); its staged marker is `DIR/run/…`. For
 * a root that is not (`--root /mnt/target`) nothing is booted, so there is no booted, staged or
 * rollback slot. The bootloader comes from EFI variables on the running system, else from the
 * layout: GRUB when the GRUB layout has entries, else systemd-boot when the ESP has some.
 * `missingVerityAllowed` comes from the command line's `composefs=?` on the running system, else
 * from the repository being insecure (no fs-verity on `meta.json`), false without a repository.
 *
 * @module
 */
import { composefsKarg } from "../boot/cmdline.ts";
import { type HostBootContext, hostBootContext, isRunningRoot, readBlsMenu, underRoot } from "../boot/host.ts";
import { parseUserCfg } from "../boot/grub_menu.ts";
import { withContextSync } from "../error/mod.ts";
import { mountAt, readMountInfo } from "../mount/mountinfo.ts";
import { parseDigest } from "../oci/digest.ts";
import { OciImage } from "../oci/store.ts";
import type { Repository } from "../repository/mod.ts";
import { exists, readIfExists, readTextIfExists } from "../runtime/files.ts";
import { type Origin, parseOrigin } from "./origin.ts";
import {
  blsMenu,
  type BootEntry,
  bootEntry,
  type Bootloader,
  bootloaderFromLoaderInfo,
  grubUkiMenu,
  type Host,
  type ImageInfo,
  legacyImageInfo,
  type MenuEntry,
  menuOrderOf,
  MISSING_ORIGIN_MESSAGE_ID,
  parseStagedMarker,
  slotHost,
  type StagedMarker,
  type UsrOverlay,
} from "./status.ts";

/** Where a staged deployment is announced on the running system (bootc-layout.md §2.3). */
export const STAGED_MARKER = "/run/composefs/staged-deployment";

/** systemd-boot's `LoaderInfo` EFI variable, which names the bootloader (bootc-layout.md §1.11). */
export const LOADER_INFO_EFIVAR = "/sys/firmware/efi/efivars/LoaderInfo-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";

/** What {@link readHostStatus} needs besides the root. */
export interface StatusReadOptions {
  /** The root looked at: `/` for the running system. */
  root: string;
  /** The repository directory (to tell "no repository" from one that fails to open). */
  repoPath: string;
  /** Opens the repository read-only; called at most once, and only when a deployment needs it. */
  openRepository(): Repository;
  /** Receives the warning for a menu entry whose deployment has no origin, with bootc's journal fields. */
  warn(message: string, fields: Record<string, string>): void;
}

/** `user.cfg` when it holds menu entries: a GRUB password file alone does not make a UKI menu (§10.16). */
function grubUserCfg(grubBoot: string): string | null {
  const text = readTextIfExists(`${grubBoot}/grub2/user.cfg`);
  return text !== null && withContextSync(`reading ${grubBoot}/grub2/user.cfg`, () => parseUserCfg(text)).length > 0
    ? text
    : null;
}

function readMenu(dir: string, read: () => MenuEntry[]): MenuEntry[] {
  return withContextSync(`reading the boot entries in ${dir}`, read);
}

/** GRUB's menu: `user.cfg` (UKIs) when it has entries, else the BLS entries in `boot/loader`. */
function grubMenu(grubBoot: string): MenuEntry[] {
  const userCfg = grubUserCfg(grubBoot);
  if (userCfg !== null) {
    const staged = readTextIfExists(`${grubBoot}/grub2/user.cfg.staged`);
    return readMenu(`${grubBoot}/grub2`, () => grubUkiMenu(userCfg, staged));
  }
  const loader = `${grubBoot}/loader`;
  return readMenu(
    loader,
    () => blsMenu(readBlsMenu(`${loader}/entries`), readBlsMenu(`${loader}/entries.staged`), "grub"),
  );
}

/** The BLS menu on the ESP, in the order `bootloader` (systemd-boot or grub-cc) shows it. */
function espMenu(loader: string, bootloader: Bootloader): MenuEntry[] {
  return readMenu(
    loader,
    () => blsMenu(readBlsMenu(`${loader}/entries`), readBlsMenu(`${loader}/entries.staged`), menuOrderOf(bootloader)),
  );
}

/** The bootloader and its menu: detected from EFI variables on the running system, from the layout elsewhere. */
function bootMenu(ctx: HostBootContext, isHost: boolean): { bootloader: Bootloader; menu: MenuEntry[] } {
  const grubBoot = `${ctx.physicalRoot}/boot`;
  const espLoader = ctx.esp === null ? null : `${ctx.esp}/loader`;
  if (isHost) {
    const bootloader = bootloaderFromLoaderInfo(readIfExists(LOADER_INFO_EFIVAR));
    if (bootloader === "grub") return { bootloader, menu: grubMenu(grubBoot) };
    if (espLoader === null) {
      const where = ctx.espCandidates.join(", ");
      throw new Error(`the ${bootloader} boot entries are on the ESP, but no ESP is mounted at ${where}`);
    }
    return { bootloader, menu: espMenu(espLoader, bootloader) };
  }
  // An ESP mounted on /boot holds systemd-boot's entries, not GRUB's.
  if (ctx.esp !== grubBoot) {
    const menu = grubMenu(grubBoot);
    if (menu.length > 0 || espLoader === null) return { bootloader: "grub", menu };
  }
  return { bootloader: "systemd", menu: espMenu(espLoader!, "systemd") };
}

function isHexId(s: string): boolean {
  return /^[0-9a-fA-F]{1,128}$/.test(s);
}

/** A deployment's origin, or null when its state directory or origin file is missing (or the id is no id). */
function readOrigin(physicalRoot: string, verity: string): Origin | null {
  if (!isHexId(verity)) return null;
  const path = `${physicalRoot}/state/deploy/${verity}/${verity}.origin`;
  const text = readTextIfExists(path);
  return text === null ? null : withContextSync(`reading ${path}`, () => parseOrigin(text));
}

/** Image facts (bootc-layout.md §2.2): by the origin's manifest digest from the repository, else a legacy `.imginfo`. */
function readImageInfo(physicalRoot: string, verity: string, o: Origin, repo: () => Repository): ImageInfo {
  if (o.manifestDigest !== undefined) {
    const digest = o.manifestDigest;
    const img = withContextSync(`opening image ${digest}`, () => OciImage.open(repo(), parseDigest(digest)));
    if (!img.config) throw new Error(`image ${digest} has no image config (an artifact?)`);
    return {
      architecture: img.config.architecture ?? "",
      created: img.config.created,
      version: img.manifest.annotations?.["org.opencontainers.image.version"],
      digest,
      layers: img.manifest.layers.map((l) => ({ digest: l.digest, size: l.size })),
    };
  }
  const path = `${physicalRoot}/state/deploy/${verity}/${verity}.imginfo`;
  const text = readTextIfExists(path);
  if (text === null) throw new Error(`the origin has no [image] manifest_digest and there is no legacy ${path}`);
  return withContextSync(`reading ${path}`, () => legacyImageInfo(text));
}

/** The image facts of deployment `verity` (§2.2); an error when it has no origin or its origin no image. */
export function readDeploymentImage(physicalRoot: string, verity: string, repo: Repository): ImageInfo {
  const origin = readOrigin(physicalRoot, verity);
  if (origin === null) throw new Error(`No origin file for deployment ${verity}`);
  return withContextSync(`deployment ${verity}`, () => readImageInfo(physicalRoot, verity, origin, () => repo));
}

/** Whether the block device holding `path` is read-only (a live ISO); false for anything that is not a block device. */
function onReadOnlyDevice(path: string): boolean {
  let dev: bigint;
  try {
    dev = BigInt(Deno.statSync(path).dev);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
  // glibc's gnu_dev_major / gnu_dev_minor.
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return readTextIfExists(`/sys/dev/block/${major}:${minor}/ro`)?.trim() === "1";
}

/** The facts only the running, composefs-booted system has. */
interface Booted {
  id: string;
  /** Undefined when there is no command line to read it from. */
  missingVerityAllowed: boolean | undefined;
  staged: StagedMarker | null;
  usrOverlay: UsrOverlay | null;
}

/** The staged marker of the system at `root`, or null. */
export function readStagedMarker(root: string): StagedMarker | null {
  const path = underRoot(root, STAGED_MARKER);
  const text = readTextIfExists(path);
  return text === null ? null : withContextSync(`reading ${path}`, () => parseStagedMarker(text));
}

function readBooted(root: string, id: string): Booted {
  // Only the running system's command line is known; elsewhere the repository decides (below).
  const karg = isRunningRoot(root) ? composefsKarg(Deno.readTextFileSync("/proc/cmdline")) : null;
  const usr = mountAt(underRoot(root, "/usr"), readMountInfo());
  return {
    id,
    // After a soft reboot into another deployment the command line names the old one: upstream
    // then treats verity as required, and so does bootcfs.
    missingVerityAllowed: karg === null ? undefined : karg.digest === id && karg.insecure,
    staged: readStagedMarker(root),
    usrOverlay: usr && {
      accessMode: usr.mountOptions.split(",").includes("ro") ? "readOnly" : "readWrite",
      persistence: "transient",
    },
  };
}

/**
 * The status document of the system at `opts.root`. Menu entries whose deployment has no origin
 * are skipped with a warning (`opts.warn`); an unreadable menu entry or origin, a missing
 * `boot_type`, an image missing from the repository or mixed boot types are errors.
 *
 * @example
 * ```ts
 * const host = readHostStatus({
 *   root: "/mnt/target",
 *   repoPath: "/mnt/target/sysroot/composefs",
 *   openRepository: () => Repository.open("/mnt/target/sysroot/composefs", { readOnly: true }),
 *   warn: (m) => console.warn(m),
 * });
 * ```
 */
export function readHostStatus(opts: StatusReadOptions): Host {
  const ctx = hostBootContext(opts.root);
  const booted = ctx.booted === null ? null : readBooted(opts.root, ctx.booted);
  const { bootloader, menu } = bootMenu(ctx, isRunningRoot(opts.root));
  let repo: Repository | null = null;
  const openRepo = () => (repo ??= opts.openRepository());
  try {
    let missingVerityAllowed = booted?.missingVerityAllowed;
    const verityAllowed = () => (missingVerityAllowed ??= exists(opts.repoPath) && openRepo().insecure);
    const entries = new Map<string, BootEntry>();
    const seen = new Set<string>();
    for (const { verity } of menu) {
      if (seen.has(verity)) continue;
      seen.add(verity);
      const origin = readOrigin(ctx.physicalRoot, verity);
      if (origin === null) {
        opts.warn(`No origin file for deployment ${verity}`, {
          message_id: MISSING_ORIGIN_MESSAGE_ID,
          "bootc.operation": "status",
        });
        continue;
      }
      const entry = withContextSync(`deployment ${verity}`, () =>
        bootEntry({
          verity,
          origin,
          image: origin.imageReference === undefined ? null : readImageInfo(ctx.physicalRoot, verity, origin, openRepo),
          bootloader,
          missingVerityAllowed: verityAllowed(),
        }));
      entries.set(verity, entry);
    }
    return slotHost({
      menu,
      entries,
      booted: booted?.id ?? null,
      staged: booted?.staged ?? null,
      usrOverlay: booted?.usrOverlay ?? null,
      readOnly: onReadOnlyDevice(ctx.physicalRoot),
    });
  } finally {
    // The cast undoes TypeScript's narrowing to null: `repo` is assigned inside a closure.
    (repo as Repository | null)?.close();
  }
}
