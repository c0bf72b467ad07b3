/**
 * The composefs part of `bootc install to-filesystem` (bootc-layout.md §3.1 steps 5a, 5b, 5e, 5f;
 * §3.6 "install" mode), for an image already pulled into the target's repository: the boot image
 * (deployment id), the deployment's state (`state/deploy/<id>/` with `etc/`, `var` and
 * `<id>.origin`; the shared `/var` seeded from the image), the kernel directory and the GRUB BLS
 * entry that boots it. Installing the bootloader itself (bootupd, bootctl) is not bootcfs's job.
 *
 * Order, so that a crash never leaves an entry without what it boots: the kernel files (each
 * written beside, synced, renamed), the state under a temporary name then renamed, a sync of the
 * target (and of a separate `/boot`), and only then the entry, itself replaced atomically.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { close, O_RDONLY, open, pread } from "../../ffi/libc.ts";
import { imageKargs } from "../boot/kargs_d.ts";
import { kernelDirName, primaryType1Entry } from "../boot/type1.ts";
import { entryNames, parseOsRelease } from "../boot/os_release.ts";
import type { BootResource } from "../boot/resources.ts";
import { ContextError } from "../error/mod.ts";
import { type BootImage, generateBootImage, leafText } from "../oci/boot_image.ts";
import type { Digest } from "../oci/digest.ts";
import type { ObjectId, Repository } from "../repository/mod.ts";
import { fsyncDir, replaceFile, replaceFileWith, syncFilesystem } from "../runtime/durable.ts";
import { removeIfExists } from "../runtime/files.ts";
import { separateMount } from "./mount_spec.ts";
import { Directory, isRegularFile, lookup, utf8 } from "../tree/mod.ts";
import { checkoutTree, writeFileContent } from "./checkout.ts";
import { formatOrigin, originReference } from "./origin.ts";

/** What {@link installDeployment} needs. */
export interface InstallOptions {
  /** The physical root being installed to (holds `composefs/`, `state/`, `boot/`). */
  target: string;
  /** The target's repository, with the image pulled and tagged. */
  repo: Repository;
  manifestDigest: Digest;
  /** The image reference as pulled (`docker://…`, `oci:…`), recorded in the origin. */
  imgref: string;
  /** The kernel command line for deployment `id` and the image's kargs.d arguments (`installCmdline`). */
  cmdline: (id: ObjectId, imageKargs: string[]) => string;
  log: (message: string) => void;
}

/** What an installation wrote. */
export interface InstallResult {
  /** The deployment id: the boot image's fs-verity digest. */
  id: ObjectId;
  /** Hex SHA-256 of vmlinuz followed by the initramfs. */
  bootDigest: string;
  kver: string;
  /** The BLS entry file written. */
  entry: string;
  stateDir: string;
}

/** Refuses a target that already has a deployment or a boot entry: install is for an empty root. */
export function checkEmptyTarget(target: string): void {
  for (const dir of [`${target}/state/deploy`, `${target}/boot/loader/entries`]) {
    let names: string[];
    try {
      names = [...Deno.readDirSync(dir)].map((e) => e.name);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw e;
    }
    if (names.length > 0) {
      throw new Error(
        `${dir} is not empty (${names.slice(0, 3).join(", ")}): install needs a root without deployments`,
      );
    }
  }
}

/** The kernel to boot: bootc takes the kind of the first boot resource; bootcfs installs kernels only. */
function kernelOf(resources: BootResource[]): Extract<BootResource, { kind: "kernel" }> {
  const first = resources[0];
  if (!first) throw new Error("the image has no kernel (/usr/lib/modules/<kver>/vmlinuz) and no UKI");
  if (first.kind === "uki") {
    throw new Error(`the image boots a UKI (${first.path}); UKI installs are not supported yet`);
  }
  if (first.kind === "type1") {
    throw new Error(`the image ships the BLS entry /boot/loader/entries/${first.name}; those are not supported yet`);
  }
  if (!first.initramfs) throw new Error(`/usr/lib/modules/${first.kver} has a vmlinuz but no initramfs.img`);
  return first;
}

/** The kernel arguments of the image's `/usr/lib/bootc/kargs.d/*.toml` for this machine's architecture. */
function kargsD(repo: Repository, root: Directory): string[] {
  const dir = lookup(root, "/usr/lib/bootc/kargs.d");
  if (!(dir instanceof Directory)) return [];
  const files: [string, string][] = [];
  for (const [name, node] of dir.entries()) {
    if (isRegularFile(node)) files.push([utf8(name), leafText(repo, node)]);
  }
  return imageKargs(files, Deno.build.arch);
}

/** SHA-256 of the files, read in order (1 MiB at a time). */
function sha256Files(paths: string[]): string {
  const h = createHash("sha256");
  const buf = new Uint8Array(1 << 20);
  for (const path of paths) {
    const fd = open(path, O_RDONLY);
    try {
      for (let off = 0;;) {
        const n = pread(fd, buf, off, path);
        if (n === 0) break;
        h.update(buf.subarray(0, n));
        off += n;
      }
    } finally {
      close(fd);
    }
  }
  return h.digest("hex");
}

/**
 * `state/deploy/<id>/` (§3.5 step 10, §3.1 step 5f): `etc/` as the image has it (minus `.updated`),
 * `var` → `../../os/default/var`, `<id>.origin`; built as `state/.deploy-<id>.tmp` and renamed,
 * so GC and status never see half a deployment; the shared `/var` is seeded on the way
 * ({@link seedSharedVar}).
 */
function writeState(o: InstallOptions, boot: BootImage, bootDigest: string): string {
  const state = `${o.target}/state`;
  Deno.mkdirSync(`${state}/deploy`, { recursive: true });
  const dest = `${state}/deploy/${boot.id}`;
  const tmp = `${state}/.deploy-${boot.id}.tmp`;
  removeIfExists(tmp, { recursive: true });
  Deno.mkdirSync(`${tmp}/etc`, { recursive: true });
  const etc = boot.root.get("etc");
  if (etc instanceof Directory) {
    const s = checkoutTree(o.repo, etc, `${tmp}/etc`);
    o.log(`copied /etc: ${s.files} files, ${s.directories} directories`);
    removeIfExists(`${tmp}/etc/.updated`, { recursive: true });
  }
  Deno.symlinkSync("../../os/default/var", `${tmp}/var`);
  const origin = formatOrigin({
    imageReference: originReference(o.imgref),
    bootType: "bls",
    bootDigest,
    manifestDigest: o.manifestDigest,
  });
  Deno.writeTextFileSync(`${tmp}/${boot.id}.origin`, origin, { mode: 0o644 });
  seedSharedVar(o, boot, `${state}/os/default`);
  Deno.renameSync(tmp, dest);
  fsyncDir(`${state}/deploy`);
  return dest;
}

/**
 * `state/os/default/var` as the image's `/var` (§3.1 step 5f: bootc copies it over whatever is
 * there). Install only runs on a root without deployments, so what is there can only be the
 * leftover of an interrupted install: the copy is made beside and replaces it whole.
 */
function seedSharedVar(o: InstallOptions, boot: BootImage, osDir: string): void {
  Deno.mkdirSync(osDir, { recursive: true });
  const tmp = `${osDir}/.var.tmp`;
  removeIfExists(tmp, { recursive: true });
  Deno.mkdirSync(tmp, { mode: 0o755 });
  const imageVar = boot.root.get("var");
  if (imageVar instanceof Directory) {
    const s = checkoutTree(o.repo, imageVar, tmp);
    o.log(`seeded the shared /var: ${s.files} files, ${s.directories} directories`);
  }
  removeIfExists(`${osDir}/var`, { recursive: true });
  Deno.renameSync(tmp, `${osDir}/var`);
}

/** Installs manifest `o.manifestDigest` of `o.repo` as the target's first deployment. */
export async function installDeployment(o: InstallOptions): Promise<InstallResult> {
  checkEmptyTarget(o.target);
  const boot = await generateBootImage(o.repo, o.manifestDigest).catch((e) => {
    throw new ContextError(`building the boot image of ${o.manifestDigest}`, e);
  });
  o.log(`boot image ${boot.id}`);
  const kernel = kernelOf(boot.resources);
  const osRelease = kernel.osRelease ? parseOsRelease(leafText(o.repo, kernel.osRelease)) : null;
  const names = entryNames(osRelease, boot.id);
  // Everything that can refuse the image is read before anything is written.
  const cmdline = o.cmdline(boot.id, kargsD(o.repo, boot.root));

  const bootDir = `${o.target}/boot`;
  const kernelDir = `${bootDir}/${kernelDirName(boot.id)}`;
  Deno.mkdirSync(kernelDir, { recursive: true });
  for (const [leaf, name] of [[kernel.vmlinuz, "vmlinuz"], [kernel.initramfs!, "initrd"]] as const) {
    replaceFileWith(`${kernelDir}/${name}`, (tmp) => writeFileContent(o.repo, leaf, tmp));
  }
  const bootDigest = sha256Files([`${kernelDir}/vmlinuz`, `${kernelDir}/initrd`]);

  const stateDir = writeState(o, boot, bootDigest);
  // The copies of /etc and /var are not synced file by file: one syncfs before the entry exists.
  syncFilesystem(o.target);
  const separateBoot = separateMount(bootDir) !== null;
  if (separateBoot) syncFilesystem(bootDir);

  const entry = primaryType1Entry(boot.id, names, cmdline, separateBoot ? "" : "/boot");
  const entries = `${bootDir}/loader/entries`;
  Deno.mkdirSync(entries, { recursive: true });
  replaceFile(`${entries}/${entry.fileName}`, entry.text);
  return { id: boot.id, bootDigest, kver: kernel.kver, entry: `${entries}/${entry.fileName}`, stateDir };
}
