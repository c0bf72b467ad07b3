/**
 * How a new system names the filesystems it is installed on (bootc-layout.md §1.9): `root=UUID=…`
 * and, for a separate `/boot`, `systemd.mount-extra=UUID=…:/boot:<fstype>:defaults`. The UUID is
 * probed by `blkid` from the block device (bootc asks lsblk; without udev, as in containers and
 * initramfs shells, only a direct probe knows).
 *
 * @module
 */
import { containingMount, mountAt, type MountInfoEntry } from "../mount/mountinfo.ts";

/** `UUID=<uuid>` of a block device, or null (not a device, no filesystem UUID, no blkid). */
export async function deviceSpec(source: string): Promise<string | null> {
  if (!source.startsWith("/dev/")) return null;
  try {
    const out = await new Deno.Command("blkid", { args: ["-p", "-o", "value", "-s", "UUID", source] }).output();
    const uuid = new TextDecoder().decode(out.stdout).trim();
    return out.success && uuid ? `UUID=${uuid}` : null;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** `UUID=<uuid>` of the filesystem holding directory `dir`, or null. */
export async function filesystemSpec(dir: string): Promise<string | null> {
  const m = containingMount(Deno.realPathSync(dir));
  return m ? await deviceSpec(m.source) : null;
}

/** The mount at exactly `dir` (a separate filesystem there), or null. */
export function separateMount(dir: string): MountInfoEntry | null {
  try {
    return mountAt(Deno.realPathSync(dir));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}
