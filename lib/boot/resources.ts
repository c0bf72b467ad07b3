/**
 * The boot resources of an image tree (oci-and-boot.md §8.1 `get_boot_resources`): BLS entries
 * shipped in `/boot/loader/entries`, UKIs under `/boot/EFI/Linux` and `/usr/lib/modules/<kver>/`,
 * and the kernels in `/usr/lib/modules/<kver>/vmlinuz`, in that order. Pure: reads the tree only.
 *
 * @module
 */
import { type ByteString, Directory, isRegularFile, type Leaf, lookup, utf8 } from "../tree/mod.ts";

/** One thing an image can boot. */
export type BootResource =
  /** A BLS entry file shipped in the image. */
  | { kind: "type1"; name: string }
  /** A unified kernel image (or an addon), relative to the directory it was found in. */
  | { kind: "uki"; path: string; addon: boolean }
  /** A kernel of `/usr/lib/modules`, with its initramfs and the image's os-release when present. */
  | { kind: "kernel"; kver: string; vmlinuz: Leaf; initramfs: Leaf | null; osRelease: Leaf | null };

function* efiFiles(dir: Directory, prefix: string): Generator<string> {
  for (const [name, node] of dir.entries()) {
    if (node instanceof Directory) yield* efiFiles(node, `${prefix}${name}/`);
    else if (name.endsWith(".efi") && isRegularFile(node)) yield `${prefix}${name}`;
  }
}

function ukis(dir: Directory | undefined): BootResource[] {
  if (!dir) return [];
  return [...efiFiles(dir, "")].map((p) => ({ kind: "uki" as const, path: utf8(p), addon: p.endsWith(".addon.efi") }));
}

function dirAt(root: Directory, path: ByteString): Directory | undefined {
  const n = lookup(root, path);
  return n instanceof Directory ? n : undefined;
}

/** Every boot resource of `root`, in upstream's order (each group in byte order of names). */
export function bootResources(root: Directory): BootResource[] {
  const out: BootResource[] = [];
  for (const [name, node] of dirAt(root, "/boot/loader/entries")?.entries() ?? []) {
    if (!name.endsWith(".conf")) continue;
    if (!isRegularFile(node)) throw new Error(`/boot/loader/entries/${utf8(name)} is not a regular file`);
    out.push({ kind: "type1", name: utf8(name) });
  }
  out.push(...ukis(dirAt(root, "/boot/EFI/Linux")), ...ukis(dirAt(root, "/boot/loader/addons")));
  const modules = dirAt(root, "/usr/lib/modules");
  for (const [, node] of modules?.entries() ?? []) if (node instanceof Directory) out.push(...ukis(node));
  const osRelease = lookup(root, "/usr/lib/os-release");
  for (const [kver, node] of modules?.entries() ?? []) {
    if (!(node instanceof Directory)) continue;
    const vmlinuz = node.get("vmlinuz");
    if (!isRegularFile(vmlinuz)) continue;
    const initramfs = node.get("initramfs.img");
    out.push({
      kind: "kernel",
      kver: utf8(kver),
      vmlinuz,
      initramfs: isRegularFile(initramfs) ? initramfs : null,
      osRelease: isRegularFile(osRelease) ? osRelease : null,
    });
  }
  return out;
}
