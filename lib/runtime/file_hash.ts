/**
 * SHA-256 of files on disk, read 1 MiB at a time into one reused buffer (a boot digest of a
 * kernel and initramfs; the content identity of every file of an `/etc` merge). A symlink is not
 * followed: the caller names the file itself.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { close, O_NOFOLLOW, O_RDONLY, open, read } from "../../ffi/libc.ts";

const buf = new Uint8Array(1 << 20);

/** Feeds the bytes of the file at `path` into `h`. */
export function hashFileInto(h: Hash, path: string): void {
  const fd = open(path, O_RDONLY | O_NOFOLLOW);
  try {
    for (let n; (n = read(fd, buf, path)) > 0;) h.update(buf.subarray(0, n));
  } finally {
    close(fd);
  }
}

/** Hex SHA-256 of the bytes of `paths`, read in order. */
export function sha256Files(paths: string[]): string {
  const h = createHash("sha256");
  for (const path of paths) hashFileInto(h, path);
  return h.digest("hex");
}
