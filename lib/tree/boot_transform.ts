/**
 * composefs-rs `transform_for_boot` (oci-and-boot.md §6.6): what turns an OCI-transformed tree into
 * the tree of a bootable image, whose EROFS digest is the deployment id that `composefs=` names.
 * Pure; changes the tree in place.
 *
 * @module
 */
import { Directory, lookup } from "./tree.ts";

/** An image that cannot be made bootable, with the reason. */
export class BootTransformError extends Error {
  override name = "BootTransformError";
}

/** The `SELINUXTYPE` an `/etc/selinux/config` text names (§6.7 step 2), or null. */
export function selinuxPolicyName(configText: string): string | null {
  for (const line of configText.split("\n")) {
    const eq = line.indexOf("=");
    if (eq < 0) continue;
    if (line.slice(0, eq).trim().toUpperCase() === "SELINUXTYPE") return line.slice(eq + 1).trim();
  }
  return null;
}

/**
 * Applies the boot transform in place:
 * 1. `/usr`, `/boot` and `/sysroot` must be directories (an image without `/sysroot` cannot be
 *    booted by composefs-setup-root);
 * 2. `/boot` and `/sysroot` are emptied and take `/usr`'s mtime seconds — the nanoseconds stay
 *    as they were, as upstream leaves them, which V1 images record;
 * 3. SELinux labels: with no policy the OCI transform has already dropped every
 *    `security.selinux`; an image that names a policy in `/etc/selinux/config` would need its
 *    tree relabelled from the policy's file contexts (§6.7), which bootcfs does not do yet, so it
 *    is refused rather than booted unlabelled.
 *
 * `readText` reads a regular file of the tree (inline data or a repository object), or null.
 */
export function transformForBoot(root: Directory, readText: (path: string) => string | null): void {
  const dirs = ["usr", "boot", "sysroot"].map((name) => {
    const d = root.get(name);
    if (!(d instanceof Directory)) {
      throw new BootTransformError(`the image has no /${name} directory, which a bootable image needs`);
    }
    return d;
  });
  const [usr, boot, sysroot] = dirs;
  for (const d of [boot, sysroot]) {
    d.clear();
    d.stat = { ...d.stat, mtimeSec: usr.stat.mtimeSec };
  }
  if (lookup(root, "/etc/selinux") instanceof Directory) {
    const policy = selinuxPolicyName(readText("/etc/selinux/config") ?? "");
    if (policy !== null) {
      throw new BootTransformError(
        `the image has the SELinux policy ${JSON.stringify(policy)}; relabelling a boot image ` +
          "from its file contexts is not implemented in bootcfs yet",
      );
    }
  }
}
