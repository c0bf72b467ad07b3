/**
 * The composefs markers of a kernel command line (bootc-layout.md §1.9, oci-and-boot.md §9):
 * `composefs=[?]<hex>` as bootc writes it, and composefs-rs's `composefs.digest=[?]vN-<alg>:<hex>`,
 * which bootcfs accepts when reading. `?` means fs-verity is optional.
 *
 * @module
 */

/** A deployment named on a command line. */
export interface ComposefsKarg {
  /** Lower-case hex of the boot image's fs-verity digest. */
  digest: string;
  /** The `?` form: verity may be missing. */
  insecure: boolean;
}

/**
 * The deployment a command line boots, or null. `composefs.digest=` wins over `composefs=` (the
 * initramfs of composefs-rs looks for it first); a key is matched exactly, so `composefs_backup=`
 * is not one.
 *
 * @example
 * ```ts
 * composefsKarg("rw composefs=?ab12 quiet"); // { digest: "ab12", insecure: true }
 * ```
 */
export function composefsKarg(cmdline: string): ComposefsKarg | null {
  let plain: ComposefsKarg | null = null;
  for (const token of cmdline.split(/\s+/)) {
    const eq = token.indexOf("=");
    if (eq < 0) continue;
    const key = token.slice(0, eq);
    let value = token.slice(eq + 1);
    const insecure = value.startsWith("?");
    if (insecure) value = value.slice(1);
    if (key === "composefs.digest") {
      const colon = value.indexOf(":");
      if (colon >= 0) return { digest: value.slice(colon + 1), insecure };
    } else if (key === "composefs" && plain === null) {
      plain = { digest: value, insecure };
    }
  }
  return plain;
}
