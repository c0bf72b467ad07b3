/**
 * A transient overlay on `/usr` (`bootc usr-overlay`, bootc-layout.md §3.15): the deployment's
 * read-only `/usr` as the lower layer, upper and work directories on `/run` (a tmpfs), so changes
 * are possible now and gone at the next boot. Through the new mount API, as composefs mounts.
 *
 * @module
 */
import * as libc from "../../ffi/libc.ts";
import { withContextSync } from "../error/mod.ts";
import { mountAt } from "./mountinfo.ts";

/** What {@link mountUsrOverlay} did. */
export type UsrOverlayResult = "mounted" | "already-mounted";

/**
 * Mounts an overlay on the directory `usr` (upper and work directories in `stateDir`, created,
 * which must be on a tmpfs for the changes to be transient), read-only when `readOnly` — it can be
 * remounted read-write later, since it has its upper layer. Nothing is done when `usr` is a mount
 * point already.
 */
export function mountUsrOverlay(usr: string, stateDir: string, readOnly: boolean): UsrOverlayResult {
  if (mountAt(usr) !== null) return "already-mounted";
  return withContextSync(`mounting an overlay on ${usr}`, () => {
    const upper = `${stateDir}/upper`;
    const work = `${stateDir}/work`;
    Deno.mkdirSync(upper, { recursive: true });
    Deno.mkdirSync(work, { recursive: true });
    const fsfd = libc.fsopen("overlay");
    let mfd: number;
    try {
      libc.fsconfig(fsfd, "source", "overlay");
      libc.fsconfig(fsfd, "lowerdir+", usr);
      libc.fsconfig(fsfd, "upperdir", upper);
      libc.fsconfig(fsfd, "workdir", work);
      libc.fsconfig(fsfd, null);
      mfd = libc.fsmount(fsfd, readOnly ? libc.MOUNT_ATTR_RDONLY : 0);
    } finally {
      libc.close(fsfd);
    }
    try {
      libc.moveMount(mfd, usr);
    } finally {
      libc.close(mfd);
    }
    return "mounted";
  });
}
