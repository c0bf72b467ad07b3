/**
 * A small bootable-shaped OS image for the host-command tests (install, upgrade, switch,
 * rollback): os-release, a kernel and initramfs in `/usr/lib/modules`, kargs.d, an `/etc` with
 * every kind of file `cp -a` must keep, `/var`, and an empty `/sysroot`.
 */
import { buildTar, type TarWriteEntry } from "../../lib/tar/mod.ts";
import { gen, writeOciLayout } from "./oci.ts";

export const T = 1710000000;
export const KVER = "6.9.0-test";
export const vmlinuz = gen(150_000, "test-vmlinuz");
export const initramfs = gen(70_000, "test-initramfs");
const te = new TextEncoder();

/** One tar member and its data. */
export type Item = { entry: TarWriteEntry; data?: Uint8Array };
/** A directory member. */
export const d = (path: string, extra: Partial<TarWriteEntry> = {}): Item => ({
  entry: { path, kind: "dir", mtime: T, ...extra },
});
/** A regular file member. */
export const f = (path: string, data: Uint8Array | string, extra: Partial<TarWriteEntry> = {}): Item => ({
  entry: { path, kind: "file", mtime: T, ...extra },
  data: typeof data === "string" ? te.encode(data) : data,
});

/** What differs between the images a test builds. */
export interface OsLayerOptions {
  /** Top-level entries (and everything under them) left out. */
  omit?: string[];
  /** Entries added, or replacing those of the same path. */
  extra?: Item[];
  /** `VERSION_ID` (default 42). */
  version?: string;
  /** The kernel arguments of `kargs.d/10-console.toml`. */
  kargs?: string[];
  /** The kernel's bytes (default {@link vmlinuz}). */
  kernel?: Uint8Array;
}

/** The layer tar of a bootable-shaped image. */
export function osLayer(opts: OsLayerOptions = {}): Uint8Array {
  const version = opts.version ?? "42";
  const kargs = opts.kargs ?? ["console=tty0", "console=ttyS0,115200"];
  const items: Item[] = [
    d("boot/"),
    d("boot/grub2/"),
    f("boot/grub2/grubenv", "# GRUB Environment Block\n"),
    d("run/"),
    d("sysroot/"),
    d("sysroot/ostree/"),
    d("usr/", { mtime: T + 5 }),
    d("usr/lib/"),
    f(
      "usr/lib/os-release",
      `NAME="Test OS"\nID=test-os\nVERSION_ID=${version}\nPRETTY_NAME="Test OS ${version}"\n`,
    ),
    d("usr/lib/modules/"),
    d(`usr/lib/modules/${KVER}/`),
    f(`usr/lib/modules/${KVER}/vmlinuz`, opts.kernel ?? vmlinuz),
    f(`usr/lib/modules/${KVER}/initramfs.img`, initramfs),
    d("usr/lib/bootc/"),
    d("usr/lib/bootc/kargs.d/"),
    f("usr/lib/bootc/kargs.d/10-console.toml", `kargs = [${kargs.map((k) => JSON.stringify(k)).join(", ")}]\n`),
    f("usr/lib/bootc/kargs.d/20-other-arch.toml", 'kargs = ["nope"]\nmatch-architectures = ["s390x"]\n'),
    d("etc/", { mode: 0o755 }),
    f("etc/hostname", "test\n"),
    f("etc/.updated", ""),
    d("etc/app/", { mode: 0o750, uid: 1000, gid: 1000 }),
    f("etc/app/secret", "s3cret\n", { mode: 0o600, uid: 1000, gid: 1000, mtime: `${T}.123456789` }),
    f("etc/app/big.conf", gen(100_000, "big"), { mode: 0o640 }),
    f("etc/hard1", "linked\n"),
    { entry: { path: "etc/hard2", kind: "hardlink", linkTarget: "etc/hard1", mtime: T } },
    { entry: { path: "etc/localtime", kind: "symlink", linkTarget: "../usr/share/zoneinfo/UTC", mtime: T } },
    { entry: { path: "etc/initctl", kind: "fifo", mode: 0o600, mtime: T } },
    { entry: { path: "etc/null", kind: "char", devMajor: 1, devMinor: 3, mode: 0o666, mtime: T } },
    f("etc/suid-helper", "#!/bin/sh\n", { mode: 0o4755 }),
    f("etc/capable", "cap\n", {
      mode: 0o755,
      xattrs: { "security.capability": new Uint8Array([1, 0, 0, 2, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) },
    }),
    d("var/"),
    d("var/tmp/", { mode: 0o1777 }),
    d("var/lib/"),
    d("var/lib/app/", { uid: 1000, gid: 1000 }),
    f("var/lib/app/db", gen(5000, "db"), { uid: 1000, gid: 1000 }),
  ];
  const extra = opts.extra ?? [];
  const replaced = new Set(extra.map((i) => i.entry.path));
  const omit = opts.omit ?? [];
  const kept = items.filter((i) =>
    !replaced.has(i.entry.path) && !omit.some((o) => i.entry.path === o || i.entry.path.startsWith(o))
  );
  return buildTar([...kept, ...extra]);
}

/** Writes `tar` as a one-layer OCI layout at `dir` and returns its reference (`oci:DIR:t`). */
export async function osImage(dir: string, tar: Uint8Array): Promise<string> {
  await writeOciLayout(dir, { layers: [{ tar, compression: "gzip" }], tag: "t" });
  return `oci:${dir}:t`;
}
