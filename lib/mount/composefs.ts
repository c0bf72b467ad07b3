/**
 * Mounting a composefs image: a file-backed EROFS (no loop device) as the metadata layer of a
 * read-only overlayfs whose data-only layers are the repository's object directories
 * (test-rig.md §4, oci-and-boot.md §9 step 4). Everything goes through the new mount API.
 *
 * @module
 */
import * as libc from "../../ffi/libc.ts";
import { withContextSync } from "../error/mod.ts";
import { type HashAlg, toHex } from "../fsverity/digest.ts";
import { hashFd } from "../fsverity/kernel.ts";
import { mountAt } from "./mountinfo.ts";

/**
 * How the detached EROFS mount becomes the overlay's lower layer:
 * - `fd`: passed as a mount fd (`fsconfig` FSCONFIG_SET_FD `lowerdir+`), never attached anywhere
 *   (kernel ≥ 6.15; composefs-rs does this);
 * - `tempdir`: attached to a private temporary directory, given to the overlay by path, then
 *   lazily unmounted and the directory removed, as C `mount.composefs` does (older kernels);
 * - `auto`: `fd`, falling back to `tempdir` when the kernel rejects a detached layer (EINVAL).
 */
export type ErofsLayerMode = "auto" | "fd" | "tempdir";

/** What to mount. Paths may be relative; they are resolved before anything is mounted. */
export interface ComposefsMountOptions {
  /** The composefs (EROFS) image file. */
  image: string;
  /** Object directories (`xx/yyyy…` files), searched in order; at least one. */
  objectDirs: string[];
  /**
   * Mount without fs-verity. When false, the image must carry fs-verity and the overlay gets
   * `verity=require`, so every object must too; a kernel or filesystem without fs-verity is refused
   * before mounting.
   */
  insecure: boolean;
  /**
   * The image's expected fs-verity digest (hex; 64 digits for sha256, 128 for sha512). A digest that
   * differs is always an error; without kernel verity (insecure) it is computed in userspace.
   */
  expectedDigest?: string;
  /** A writable overlay: changes go to `upperdir`; `workdir` must be an empty directory on the same filesystem. */
  upper?: { upperdir: string; workdir: string };
  /** The overlay's source as `/proc/mounts` shows it; `composefs` by default (like mount.composefs). */
  source?: string;
  /** See {@link ErofsLayerMode}; `auto` by default. */
  erofsLayer?: ErofsLayerMode;
}

/** How a mount was made. */
export interface ComposefsMountResult {
  /** The absolute mount point. */
  target: string;
  /** True if the overlay enforces fs-verity on objects (`verity=require`). */
  verity: boolean;
  /** How the EROFS layer was attached. */
  erofsLayer: "fd" | "tempdir";
}

/** fs-verity is required but the kernel or the filesystem cannot provide it. */
export class VerityUnavailableError extends Error {
  constructor(what: string) {
    super(`fs-verity is not supported by this kernel/filesystem (measuring ${what}); use --insecure`);
    this.name = "VerityUnavailableError";
  }
}

/** The canonical absolute path of an existing `path`, which must be of `kind`. */
function existing(path: string, kind: "file" | "directory", role: string): string {
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new Error(`${role} ${path} does not exist`);
    throw new Error(`${role} ${path}: ${e instanceof Error ? e.message : e}`);
  }
  if (kind === "file" && !st.isFile) throw new Error(`${role} ${path} is not a regular file`);
  if (kind === "directory" && !st.isDirectory) throw new Error(`${role} ${path} is not a directory`);
  return Deno.realPathSync(path);
}

const EROFS_SUPER_OFFSET = 1024, EROFS_MAGIC = 0xe0f5e1e2;

/** Refuses a file that is not EROFS: the kernel would only say EINVAL (and log the reason to dmesg). */
function checkErofsMagic(fd: number, image: string): void {
  const buf = new Uint8Array(4);
  const n = libc.pread(fd, buf, EROFS_SUPER_OFFSET, image);
  if (n < 4 || new DataView(buf.buffer).getUint32(0, true) !== EROFS_MAGIC) {
    throw new Error(`${image} is not an EROFS (composefs) image`);
  }
}

/** The kernel's fs-verity state of an open file, of whatever algorithm it has. */
type Probe = { state: "enabled"; alg: number; digest: Uint8Array } | { state: "missing" | "unsupported" };

/**
 * FS_IOC_MEASURE_VERITY on `fd`. ENODATA: the filesystem can do verity, this file has none.
 * EOPNOTSUPP (no CONFIG_FS_VERITY, or no verity feature), ENOTTY (filesystems without the ioctl,
 * e.g. xfs) or ENOSYS: no verity here at all.
 */
function probeVerity(fd: number, what: string): Probe {
  try {
    return { state: "enabled", ...libc.measureVerity(fd, what) };
  } catch (e) {
    if (!(e instanceof libc.SyscallError)) throw e;
    if (e.code === "ENODATA") return { state: "missing" };
    if (e.code === "EOPNOTSUPP" || e.code === "ENOTTY" || e.code === "ENOSYS") return { state: "unsupported" };
    throw e;
  }
}

/**
 * Decides up front whether the mount can use fs-verity, so that a secure mount on a system without
 * it fails here with a clear message instead of with EIO on the first read (test-rig.md §4.3).
 * The decision is the kernel's own answer to FS_IOC_MEASURE_VERITY ({@link probeVerity}) on the
 * image (which must have a digest) and on each object directory (whose filesystem must be able to
 * carry verity). Returns whether verity is enforced.
 *
 * An expected digest (its length gives the algorithm) is compared with the kernel's measurement;
 * in insecure mode, when the kernel has none, with the digest computed in userspace from the same
 * open file.
 */
function checkVerity(imageFd: number, image: string, objectDirs: string[], o: ComposefsMountOptions): boolean {
  const m = probeVerity(imageFd, image);
  if (!o.insecure) {
    if (m.state === "unsupported") throw new VerityUnavailableError(`image ${image}`);
    if (m.state === "missing") throw new Error(`image ${image} has no fs-verity digest (required unless --insecure)`);
  }
  const want = o.expectedDigest?.toLowerCase();
  if (want) {
    const alg: HashAlg = want.length === 128 ? "sha512" : "sha256";
    if (m.state === "enabled" && m.alg !== libc.FS_VERITY_HASH_ALG[alg]) {
      throw new Error(`image ${image} has fs-verity of algorithm ${m.alg}, expected ${alg}`);
    }
    const got = toHex(m.state === "enabled" ? m.digest : hashFd(imageFd, alg, image));
    if (got !== want) throw new Error(`image ${image} has fs-verity digest ${got}, expected ${want}`);
  }
  if (o.insecure) return false;
  for (const dir of objectDirs) {
    const fd = libc.open(dir, libc.O_RDONLY | libc.O_DIRECTORY);
    try {
      if (probeVerity(fd, dir).state === "unsupported") throw new VerityUnavailableError(`object directory ${dir}`);
    } finally {
      libc.close(fd);
    }
  }
  return true;
}

/** A detached, read-only EROFS mount of the image open at `imageFd`, straight from the file. */
function mountErofs(imageFd: number): number {
  const fsfd = libc.fsopen("erofs");
  try {
    libc.fsconfig(fsfd, "source", `/proc/self/fd/${imageFd}`);
    libc.fsconfig(fsfd, "ro", null);
    libc.fsconfig(fsfd, null);
    return libc.fsmount(fsfd, libc.MOUNT_ATTR_RDONLY);
  } finally {
    libc.close(fsfd);
  }
}

/** A detached overlay mount; `setLower` adds the EROFS layer to the fresh context. */
function mountOverlay(
  setLower: (fsfd: number) => void,
  objectDirs: string[],
  verity: boolean,
  o: ComposefsMountOptions,
  upper: { upperdir: string; workdir: string } | null,
): number {
  const fsfd = libc.fsopen("overlay");
  try {
    libc.fsconfig(fsfd, "source", o.source ?? "composefs");
    // Older kernels refuse data-only layers without these; 6.18 defaults both to off.
    libc.fsconfig(fsfd, "metacopy", "on");
    libc.fsconfig(fsfd, "redirect_dir", "on");
    if (verity) libc.fsconfig(fsfd, "verity", "require");
    setLower(fsfd);
    for (const dir of objectDirs) libc.fsconfig(fsfd, "datadir+", dir);
    if (upper) {
      libc.fsconfig(fsfd, "upperdir", upper.upperdir);
      libc.fsconfig(fsfd, "workdir", upper.workdir);
    } else {
      libc.fsconfig(fsfd, "ro", null);
    }
    libc.fsconfig(fsfd, null);
    return libc.fsmount(fsfd, upper ? 0 : libc.MOUNT_ATTR_RDONLY);
  } finally {
    libc.close(fsfd);
  }
}

/** The EROFS layer through a temporary mount point, removed again once the overlay holds it. */
function overlayViaTempdir(erofsFd: number, mkOverlay: (setLower: (fsfd: number) => void) => number): number {
  const tmp = Deno.makeTempDirSync({ prefix: ".composefs." });
  try {
    libc.moveMount(erofsFd, tmp);
    try {
      return mkOverlay((fsfd) => libc.fsconfig(fsfd, "lowerdir+", tmp));
    } finally {
      libc.umount2(tmp, libc.MNT_DETACH);
    }
  } finally {
    Deno.removeSync(tmp);
  }
}

/** The overlay with the EROFS mount `erofsFd` as its lower layer, attached as `mode` says. */
function overlayOnErofs(
  erofsFd: number,
  mode: ErofsLayerMode,
  mkOverlay: (setLower: (fsfd: number) => void) => number,
): { overlayFd: number; used: "fd" | "tempdir" } {
  if (mode === "tempdir") return { overlayFd: overlayViaTempdir(erofsFd, mkOverlay), used: "tempdir" };
  try {
    return { overlayFd: mkOverlay((fsfd) => libc.fsconfigFd(fsfd, "lowerdir+", erofsFd)), used: "fd" };
  } catch (e) {
    if (!(mode === "auto" && e instanceof libc.SyscallError && e.code === "EINVAL")) throw e;
    return { overlayFd: overlayViaTempdir(erofsFd, mkOverlay), used: "tempdir" };
  }
}

/**
 * Resolves the upper and work directories and checks what overlayfs would refuse with a bare
 * EINVAL: they must be on one filesystem and neither may contain the other.
 */
function checkUpper(u: { upperdir: string; workdir: string }): { upperdir: string; workdir: string } {
  const upperdir = existing(u.upperdir, "directory", "upper directory");
  const workdir = existing(u.workdir, "directory", "work directory");
  if (Deno.statSync(upperdir).dev !== Deno.statSync(workdir).dev) {
    throw new Error(`upper directory ${upperdir} and work directory ${workdir} are on different filesystems`);
  }
  const inside = (a: string, b: string) => a === b || a.startsWith(b.endsWith("/") ? b : b + "/");
  if (inside(upperdir, workdir) || inside(workdir, upperdir)) {
    throw new Error(
      `upper directory ${upperdir} and work directory ${workdir} must be separate, neither inside the other`,
    );
  }
  return { upperdir, workdir };
}

/**
 * Mounts the composefs image `o.image` on the directory `target`: read-only unless `o.upper` is
 * given, with `verity=require` unless `o.insecure`. Errors name what was being mounted.
 */
export function mountComposefs(target: string, o: ComposefsMountOptions): ComposefsMountResult {
  return withContextSync(`mounting composefs image ${o.image} on ${target}`, () => {
    if (o.objectDirs.length === 0) throw new Error("no object directory given");
    const image = existing(o.image, "file", "image");
    const objectDirs = o.objectDirs.map((d) => existing(d, "directory", "object directory"));
    const mountPoint = existing(target, "directory", "mount point");
    const upper = o.upper ? checkUpper(o.upper) : null;

    const imageFd = libc.open(image, libc.O_RDONLY);
    let erofsFd: number;
    let verity: boolean;
    try {
      checkErofsMagic(imageFd, image);
      verity = checkVerity(imageFd, image, objectDirs, o);
      erofsFd = withContextSync("mounting the EROFS image", () => mountErofs(imageFd));
    } finally {
      libc.close(imageFd);
    }
    try {
      const mkOverlay = (setLower: (fsfd: number) => void) => mountOverlay(setLower, objectDirs, verity, o, upper);
      const { overlayFd, used } = withContextSync(
        "creating the overlay",
        () => overlayOnErofs(erofsFd, o.erofsLayer ?? "auto", mkOverlay),
      );
      try {
        libc.moveMount(overlayFd, mountPoint);
      } finally {
        libc.close(overlayFd);
      }
      return { target: mountPoint, verity, erofsLayer: used };
    } finally {
      libc.close(erofsFd);
    }
  });
}

/**
 * Unmounts the composefs (overlay) mount at `target`. Refuses a path that is not a mount point or
 * whose top mount is not an overlay, so a typo cannot unmount something else. `lazy` detaches a
 * busy mount (MNT_DETACH). The EROFS layer needs no separate unmount: it was never attached, or was
 * detached right after mounting, and goes away with the overlay.
 */
export function unmountComposefs(target: string, opts: { lazy?: boolean } = {}): void {
  withContextSync(`unmounting ${target}`, () => {
    const path = existing(target, "directory", "mount point");
    const m = mountAt(path);
    if (!m) throw new Error(`${path} is not a mount point`);
    if (m.fsType !== "overlay") throw new Error(`${path} is a ${m.fsType} mount (${m.source}), not composefs`);
    libc.umount2(path, opts.lazy ? libc.MNT_DETACH : 0);
  });
}
