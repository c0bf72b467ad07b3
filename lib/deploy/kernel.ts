/**
 * The Type-1 kernel of a deployment (bootc-layout.md §1.1, §3.6 steps 2, 4 and 6): which kernel
 * an image boots, the arguments of its kargs.d, its boot digest (sha256 of vmlinuz followed by
 * the initramfs), and `boot/bootc_composefs-<id>/{vmlinuz,initrd}` — written, or found among the
 * directories already there when an upgrade keeps the same kernel.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { ARTIFACT_PREFIX, type BlsEntry, entryArtifact } from "../boot/bls.ts";
import { imageKargs } from "../boot/kargs_d.ts";
import { type EntryNames, entryNames, parseOsRelease } from "../boot/os_release.ts";
import type { BootResource } from "../boot/resources.ts";
import { kernelDirName } from "../boot/type1.ts";
import { withContextSync } from "../error/mod.ts";
import { toHex } from "../fsverity/digest.ts";
import { leafText } from "../oci/boot_image.ts";
import type { ObjectId, Repository } from "../repository/mod.ts";
import { fsyncDir, replaceFileWith } from "../runtime/durable.ts";
import { hashFileInto, sha256Files } from "../runtime/file_hash.ts";
import { exists } from "../runtime/files.ts";
import { Directory, isRegularFile, type Leaf, lookup, utf8 } from "../tree/mod.ts";
import { writeFileContent } from "./checkout.ts";

/** A kernel in `/usr/lib/modules/<kver>/` with its initramfs. */
export type Kernel = Extract<BootResource, { kind: "kernel" }> & { initramfs: Leaf };

/** The kernel to boot: bootc takes the kind of the first boot resource; bootcfs boots kernels only. */
export function kernelOf(resources: BootResource[]): Kernel {
  const first = resources[0];
  if (!first) throw new Error("the image has no kernel (/usr/lib/modules/<kver>/vmlinuz) and no UKI");
  if (first.kind === "uki") {
    throw new Error(`the image boots a UKI (${first.path}); UKI deployments are not supported yet`);
  }
  if (first.kind === "type1") {
    throw new Error(`the image ships the BLS entry /boot/loader/entries/${first.name}; those are not supported yet`);
  }
  if (!first.initramfs) throw new Error(`/usr/lib/modules/${first.kver} has a vmlinuz but no initramfs.img`);
  return first as Kernel;
}

/** What the image's entry is called, from the os-release beside its kernel (the deployment id without one). */
export function imageEntryNames(repo: Repository, kernel: Kernel, id: string): EntryNames {
  return entryNames(kernel.osRelease ? parseOsRelease(leafText(repo, kernel.osRelease)) : null, id);
}

/** The kernel arguments of an image tree's `/usr/lib/bootc/kargs.d/*.toml` for this machine's architecture. */
export function imageKargsOf(repo: Repository, root: Directory): string[] {
  const dir = lookup(root, "/usr/lib/bootc/kargs.d");
  if (!(dir instanceof Directory)) return [];
  const files: [string, string][] = [];
  for (const [name, node] of dir.entries()) {
    if (isRegularFile(node)) files.push([utf8(name), leafText(repo, node)]);
  }
  return imageKargs(files, Deno.build.arch);
}

/** The kernel arguments of the kargs.d directory of a mounted system (`/usr/lib/bootc/kargs.d`). */
export function hostKargs(dir: string): string[] {
  if (!exists(dir)) return [];
  const files: [string, string][] = [...Deno.readDirSync(dir)]
    .filter((e) => e.isFile)
    .map((e) => [e.name, Deno.readTextFileSync(`${dir}/${e.name}`)]);
  return imageKargs(files, Deno.build.arch);
}

/** The boot digest of an image's kernel (vmlinuz, then initramfs), read from the repository. */
export function kernelBootDigest(repo: Repository, kernel: Kernel): string {
  const h = createHash("sha256");
  for (const leaf of [kernel.vmlinuz, kernel.initramfs]) {
    const c = leaf.content;
    if (c.kind === "inline") h.update(c.data);
    else if (c.kind === "external" || c.kind === "external-noverity") {
      hashFileInto(h, repo.objectPath(toHex(c.id.digest) as ObjectId));
    } else throw new Error(`the kernel file has no data (${c.kind})`);
  }
  return h.digest("hex");
}

/**
 * Writes `boot/bootc_composefs-<id>/{vmlinuz,initrd}`, each file written beside, synced and
 * renamed, then the directories synced.
 */
export function writeKernelDir(bootDir: string, id: string, repo: Repository, kernel: Kernel): string {
  const dir = `${bootDir}/${kernelDirName(id)}`;
  Deno.mkdirSync(dir, { recursive: true });
  for (const [leaf, name] of [[kernel.vmlinuz, "vmlinuz"], [kernel.initramfs, "initrd"]] as const) {
    replaceFileWith(`${dir}/${name}`, (tmp) => writeFileContent(repo, leaf, tmp));
  }
  fsyncDir(bootDir);
  return dir;
}

/**
 * The id of a `bootc_composefs-<id>` directory in `bootDir` whose kernel and initramfs have boot
 * digest `digest` (an upgrade that keeps the kernel shares it, §3.6 step 6), or null.
 */
export function findKernelDir(bootDir: string, digest: string): string | null {
  for (const id of kernelDirIds(bootDir)) {
    const dir = `${bootDir}/${kernelDirName(id)}`;
    const files = [`${dir}/vmlinuz`, `${dir}/initrd`];
    if (files.every(exists) && sha256Files(files) === digest) return id;
  }
  return null;
}

/** The ids `<x>` of the `bootc_composefs-<x>` directories of `bootDir`, sorted. */
function kernelDirIds(bootDir: string): string[] {
  if (!exists(bootDir)) return [];
  return [...Deno.readDirSync(bootDir)]
    .filter((e) => e.isDirectory && e.name.startsWith(ARTIFACT_PREFIX))
    .map((e) => e.name.slice(ARTIFACT_PREFIX.length))
    .sort();
}

/**
 * The kernel directories of `bootDir` that none of `entries` (the live and staged menus) loads
 * its kernel from (§3.11 step 4, Type-1), deleted unless `dryRun`. Deleting the booted
 * deployment's would make it unbootable: that is an error.
 */
export function removeUnusedKernels(
  bootDir: string,
  entries: [string, BlsEntry][],
  booted: string | null,
  dryRun = false,
): string[] {
  const used = new Set(entries.map(([path, e]) => withContextSync(`boot entry ${path}`, () => entryArtifact(e)).name));
  const unused = kernelDirIds(bootDir).filter((id) => !used.has(id));
  if (booted !== null && unused.includes(booted)) {
    throw new Error(`Inconsistent state: no entry uses the booted deployment's kernel ${kernelDirName(booted)}`);
  }
  if (dryRun) return unused;
  for (const id of unused) Deno.removeSync(`${bootDir}/${kernelDirName(id)}`, { recursive: true });
  if (unused.length > 0) fsyncDir(bootDir);
  return unused;
}
