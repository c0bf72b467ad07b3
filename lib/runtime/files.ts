/**
 * File lookups where absence is an answer, not an error: what the boot, deploy and podman code
 * asks of menus, state directories and scratch files. "Absent" is ENOENT, or ENOTDIR when a
 * component of the path is not a directory.
 *
 * @module
 */

function absent(e: unknown): boolean {
  return e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory;
}

/** Whether `path` exists (a symlink is followed). */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (e) {
    if (absent(e)) return false;
    throw e;
  }
}

/** The bytes of `path`, or null when it does not exist. */
export function readIfExists(path: string): Uint8Array | null {
  try {
    return Deno.readFileSync(path);
  } catch (e) {
    if (absent(e)) return null;
    throw e;
  }
}

/** The text (UTF-8) of `path`, or null when it does not exist. */
export function readTextIfExists(path: string): string | null {
  const b = readIfExists(path);
  return b === null ? null : new TextDecoder().decode(b);
}

/** Removes `path` (a whole tree with `recursive`) if it exists; true when something was removed. */
export function removeIfExists(path: string, opts: { recursive?: boolean } = {}): boolean {
  try {
    Deno.removeSync(path, opts);
    return true;
  } catch (e) {
    if (absent(e)) return false;
    throw e;
  }
}
