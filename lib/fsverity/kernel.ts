/**
 * Kernel fs-verity on open files (composefs-formats.md §2.2), with the errno mapping composefs-rs
 * uses, and the userspace fallback for filesystems or kernels without fs-verity.
 *
 * @module
 */
import {
  close,
  enableVerity,
  FS_VERITY_HASH_ALG,
  measureVerity,
  O_NOFOLLOW,
  O_RDONLY,
  open,
  openTmpfile,
  pread,
  SyscallError,
  writeAll,
} from "../../ffi/libc.ts";
import { FsVerityHasher, type HashAlg } from "./digest.ts";

/** The kernel's answer about one file. */
export type Measured =
  | { state: "enabled"; digest: Uint8Array }
  | { state: "missing" } // the filesystem supports verity, this file has none
  | { state: "unsupported" }; // the filesystem or kernel has no fs-verity

const UNSUPPORTED = new Set(["ENOTTY", "EOPNOTSUPP", "ENOSYS"]);

/** FS_IOC_MEASURE_VERITY on `fd`; a digest of another algorithm or size is an error. */
export function measureFd(fd: number, alg: HashAlg, what: string): Measured {
  try {
    const m = measureVerity(fd, what);
    if (m.alg !== FS_VERITY_HASH_ALG[alg]) {
      throw new Error(`${what}: fs-verity uses algorithm ${m.alg}, expected ${alg}`);
    }
    return { state: "enabled", digest: m.digest };
  } catch (e) {
    if (e instanceof SyscallError && e.code === "ENODATA") return { state: "missing" };
    if (e instanceof SyscallError && UNSUPPORTED.has(e.code)) return { state: "unsupported" };
    throw e;
  }
}

/**
 * FS_IOC_ENABLE_VERITY on a read-only `fd`. Returns false when the filesystem has no fs-verity;
 * "already enabled" counts as success. ETXTBSY (a writer still open somewhere) is retried 3×.
 */
export function enableFd(fd: number, alg: HashAlg, what: string): boolean {
  for (let attempt = 0;; attempt++) {
    try {
      enableVerity(fd, alg, what);
      return true;
    } catch (e) {
      if (!(e instanceof SyscallError)) throw e;
      if (e.code === "EEXIST") return true;
      if (UNSUPPORTED.has(e.code)) return false;
      if (e.code === "ETXTBSY" && attempt < 3) {
        const until = Date.now() + 1;
        while (Date.now() < until) { /* 1 ms, synchronously: the caller holds fds */ }
        continue;
      }
      throw e;
    }
  }
}

/**
 * Whether the filesystem holding directory `dir` can enable fs-verity: tried on an unnamed
 * one-byte file there (O_TMPFILE), which vanishes when closed; false without O_TMPFILE.
 */
export function verityAvailable(dir: string, alg: HashAlg = "sha512"): boolean {
  let fd: number;
  try {
    fd = openTmpfile(dir, 0o600);
  } catch (e) {
    // No O_TMPFILE (e.g. vfat, some FUSE filesystems): none of those has fs-verity either.
    if (e instanceof SyscallError && ["EOPNOTSUPP", "EISDIR", "EINVAL"].includes(e.code)) return false;
    throw e;
  }
  let ro: number;
  try {
    writeAll(fd, new Uint8Array(1), dir);
    // fs-verity refuses a file with a writer open; the read-only reopen keeps the unnamed file.
    ro = open(`/proc/self/fd/${fd}`, O_RDONLY);
  } finally {
    close(fd);
  }
  try {
    return enableFd(ro, alg, dir);
  } finally {
    close(ro);
  }
}

/**
 * One read buffer and one hasher per algorithm for {@link hashFd}: it is synchronous, and imports
 * call it once per file (a hasher of its own per file is 12 KiB of buffers each time, which V8
 * lets pile up outside its heap).
 */
let hashBuf: Uint8Array | null = null;
const fdHashers: Partial<Record<HashAlg, FsVerityHasher>> = {};

/**
 * The fs-verity digest of everything readable from `fd`, computed in userspace (1 MiB reads).
 * `onData` sees every byte read, for a caller that checks the content another way too.
 */
export function hashFd(fd: number, alg: HashAlg, what: string, onData?: (chunk: Uint8Array) => void): Uint8Array {
  const h = fdHashers[alg] ??= new FsVerityHasher(alg);
  h.reset();
  const buf = hashBuf ??= new Uint8Array(1 << 20);
  for (let off = 0;;) {
    const n = pread(fd, buf, off, what);
    if (n === 0) break;
    const chunk = buf.subarray(0, n);
    h.update(chunk);
    onData?.(chunk);
    off += n;
  }
  return h.digest();
}

/** How a digest was obtained. */
export type DigestSource = "kernel" | "userspace";

/**
 * The fs-verity digest of the file at `path` (a symlink is not followed): the kernel's when the
 * file has verity, computed in userspace otherwise (the file's content is read).
 */
export function fileDigest(path: string, alg: HashAlg): { digest: Uint8Array; source: DigestSource } {
  const fd = open(path, O_RDONLY | O_NOFOLLOW);
  try {
    const m = measureFd(fd, alg, path);
    if (m.state === "enabled") return { digest: m.digest, source: "kernel" };
    return { digest: hashFd(fd, alg, path), source: "userspace" };
  } finally {
    close(fd);
  }
}
