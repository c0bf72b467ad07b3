/**
 * fs-verity digests of files on disk, streamed in 1 MiB reads so memory stays flat for any size.
 *
 * @module
 */
import { withContextSync } from "../error/mod.ts";
import { FsVerityHasher, type HashAlg } from "./digest.ts";

const CHUNK = 1 << 20;

/**
 * The fs-verity digest of the regular file at `path`. Directories, FIFOs, sockets and devices
 * are refused up front (a FIFO would block, a device could be endless).
 */
export function digestFileSync(path: string, alg: HashAlg, onBytes?: (n: number) => void): Uint8Array {
  return withContextSync(`computing the fs-verity digest of ${path}`, () => {
    const st = Deno.statSync(path);
    if (st.isDirectory) throw new Error("is a directory");
    if (!st.isFile) throw new Error("not a regular file");
    using f = Deno.openSync(path, { read: true });
    const h = new FsVerityHasher(alg);
    const buf = new Uint8Array(CHUNK);
    for (;;) {
      const n = f.readSync(buf);
      if (n === null || n === 0) break;
      h.update(n === CHUNK ? buf : buf.subarray(0, n));
      onBytes?.(n);
    }
    return h.digest();
  });
}
