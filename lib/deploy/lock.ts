/**
 * One writer at a time on a system's deployments: an exclusive `flock` on its `state/` directory
 * for the whole of an upgrade, switch, rollback or finalization, so two runs never interleave
 * their menu exchanges or stage over each other. A second run fails at once with the reason.
 *
 * @module
 */
import { close, flock, LOCK_EX, LOCK_NB, O_DIRECTORY, O_RDONLY, open } from "../../ffi/libc.ts";
import { exists } from "../runtime/files.ts";

/** Takes the deployments lock of the physical root `physicalRoot`; released when disposed. */
export function lockDeployments(physicalRoot: string): Disposable {
  const dir = `${physicalRoot}/state`;
  if (!exists(dir)) throw new Error(`${physicalRoot} has no deployments (no ${dir}): install one first`);
  const fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (!flock(fd, LOCK_EX | LOCK_NB, dir)) {
    close(fd);
    throw new Error(`another bootcfs is changing the deployments of ${physicalRoot} (${dir} is locked)`);
  }
  return { [Symbol.dispose]: () => close(fd) };
}
