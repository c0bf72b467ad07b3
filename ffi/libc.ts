/**
 * Typed bindings to the libc calls that Deno does not expose: fd-level I/O, O_TMPFILE, linkat,
 * renameat2, syncfs, flock, ioctls (FICLONE, fs-verity), xattr reads, the new mount API, umount2 and
 * Unix datagram sockets.
 *
 * Every wrapper reads errno immediately after the call fails and throws a {@link SyscallError}
 * that names the call, the path (or fd) and the errno. Nothing here knows about composefs.
 *
 * @module
 */

const lib = Deno.dlopen(
  "libc.so.6",
  {
    open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
    openat: { parameters: ["i32", "buffer", "i32", "u32"], result: "i32" },
    close: { parameters: ["i32"], result: "i32" },
    read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
    write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
    pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
    fsync: { parameters: ["i32"], result: "i32" },
    syncfs: { parameters: ["i32"], result: "i32" },
    malloc_trim: { parameters: ["usize"], result: "i32" },
    mallopt: { parameters: ["i32", "i32"], result: "i32" },
    madvise: { parameters: ["pointer", "usize", "i32"], result: "i32" },
    flock: { parameters: ["i32", "i32"], result: "i32" },
    ioctl_ptr: { name: "ioctl", parameters: ["i32", "u64", "buffer"], result: "i32" },
    ioctl_int: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
    linkat: { parameters: ["i32", "buffer", "i32", "buffer", "i32"], result: "i32" },
    renameat2: { parameters: ["i32", "buffer", "i32", "buffer", "u32"], result: "i32" },
    umount2: { parameters: ["buffer", "i32"], result: "i32" },
    sys_fsopen: { name: "syscall", parameters: ["i64", "buffer", "u32"], result: "i64" },
    sys_fsconfig: { name: "syscall", parameters: ["i64", "i32", "u32", "buffer", "buffer", "i32"], result: "i64" },
    sys_fsmount: { name: "syscall", parameters: ["i64", "i32", "u32", "u32"], result: "i64" },
    sys_move_mount: { name: "syscall", parameters: ["i64", "i32", "buffer", "i32", "buffer", "u32"], result: "i64" },
    lgetxattr: { parameters: ["buffer", "buffer", "buffer", "usize"], result: "isize" },
    llistxattr: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
    lremovexattr: { parameters: ["buffer", "buffer"], result: "i32" },
    socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
    bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
    sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
    recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
    unlink: { parameters: ["buffer"], result: "i32" },
    unlink_nb: { name: "unlink", parameters: ["buffer"], result: "i32", nonblocking: true },
    copy_file_range: { parameters: ["i32", "buffer", "i32", "buffer", "usize", "u32"], result: "isize" },
    fstatat: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
    mkdir: { parameters: ["buffer", "u32"], result: "i32" },
    mknod: { parameters: ["buffer", "u32", "u64"], result: "i32" },
    symlink: { parameters: ["buffer", "buffer"], result: "i32" },
    lchown: { parameters: ["buffer", "u32", "u32"], result: "i32" },
    chmod: { parameters: ["buffer", "u32"], result: "i32" },
    lsetxattr: { parameters: ["buffer", "buffer", "buffer", "usize", "i32"], result: "i32" },
    utimensat: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
    syncfs_nb: { name: "syncfs", parameters: ["i32"], result: "i32", nonblocking: true },
    __errno_location: { parameters: [], result: "pointer" },
    strerror: { parameters: ["i32"], result: "pointer" },
  } as const,
);

// The errno location is per thread; FFI calls here are synchronous on the main thread, so it is stable.
const errnoView = new Deno.UnsafePointerView(lib.symbols.__errno_location()!);

/** Symbolic names of the errno values the callers act on or users are likely to see. */
export const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: "EPERM",
  2: "ENOENT",
  4: "EINTR",
  5: "EIO",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  16: "EBUSY",
  17: "EEXIST",
  18: "EXDEV",
  19: "ENODEV",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  25: "ENOTTY",
  26: "ETXTBSY",
  27: "EFBIG",
  28: "ENOSPC",
  30: "EROFS",
  31: "EMLINK",
  34: "ERANGE",
  36: "ENAMETOOLONG",
  38: "ENOSYS",
  39: "ENOTEMPTY",
  40: "ELOOP",
  61: "ENODATA",
  65: "ENOPKG",
  75: "EOVERFLOW",
  90: "EMSGSIZE",
  95: "EOPNOTSUPP",
  98: "EADDRINUSE",
  111: "ECONNREFUSED",
  129: "EKEYREJECTED",
};

/** A failed libc call: which call, on what, and the errno it left. */
export class SyscallError extends Error {
  /** The libc function or system call that failed. */
  readonly call: string;
  /** The path or fd the call was about, as given in the message. */
  readonly target: string;
  /** The raw errno value. */
  readonly errno: number;
  /** The symbolic errno name, e.g. `EOPNOTSUPP`, or `E<number>` when unknown. */
  readonly code: string;

  constructor(call: string, target: string, errno: number, detail?: string) {
    const code = ERRNO_NAMES[errno] ?? `E${errno}`;
    const text = Deno.UnsafePointerView.getCString(lib.symbols.strerror(errno)!);
    super(`${call} ${target}: ${text} (${code})${detail ? `: ${detail}` : ""}`);
    this.name = "SyscallError";
    this.call = call;
    this.target = target;
    this.errno = errno;
    this.code = code;
  }
}

const enc = new TextEncoder();
/** A NUL-terminated copy of `s`, as libc wants paths. */
export function cstr(s: string): Uint8Array {
  return enc.encode(s + "\0");
}

/**
 * A path as text (UTF-8) or as raw bytes, for names that need not be UTF-8 (file names taken from
 * an image tree).
 */
export type PathArg = string | Uint8Array;

function cpath(p: PathArg): Uint8Array {
  if (typeof p === "string") return cstr(p);
  const out = new Uint8Array(p.length + 1);
  out.set(p);
  return out;
}

function showPath(p: PathArg): string {
  return typeof p === "string" ? p : new TextDecoder().decode(p);
}

function check(r: number | bigint, call: string, target: string): number {
  const n = Number(r);
  if (n < 0) throw new SyscallError(call, target, errnoView.getInt32());
  return n;
}

export const O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0o100, O_EXCL = 0o200, O_TRUNC = 0o1000;
export const O_DIRECTORY = 0o200000, O_NOFOLLOW = 0o400000, O_CLOEXEC = 0o2000000, O_PATH = 0o10000000;
export const O_TMPFILE = 0o20000000 | O_DIRECTORY;
export const AT_FDCWD = -100, AT_SYMLINK_FOLLOW = 0x400, AT_EMPTY_PATH = 0x1000;
export const RENAME_NOREPLACE = 1, RENAME_EXCHANGE = 2;
export const LOCK_SH = 1, LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
export const MNT_FORCE = 1, MNT_DETACH = 2;
const FICLONE = 0x40049409n, FS_IOC_ENABLE_VERITY = 0x40806685n, FS_IOC_MEASURE_VERITY = 0xc0046686n;

/** open(2); returns the new fd. */
export function open(path: PathArg, flags: number, mode = 0o644): number {
  return check(lib.symbols.open(cpath(path), flags | O_CLOEXEC, mode), "open", showPath(path));
}

/**
 * An open directory that relative paths are resolved against (`*at` calls): a store that makes
 * thousands of files in one tree saves the kernel walking the same leading path for each.
 * `path` names it in error messages.
 */
export interface DirRef {
  fd: number;
  path: string;
}

const CWD: DirRef = { fd: AT_FDCWD, path: "" };

function under(at: DirRef, path: string): string {
  return at.path ? `${at.path}/${path}` : path;
}

/** Opens a directory as a {@link DirRef} (O_PATH: only for `*at` calls). */
export function openDir(path: string): DirRef {
  return { fd: open(path, O_PATH | O_DIRECTORY), path };
}

/** An unnamed file in `dir` (O_TMPFILE), to be named later with {@link linkFd}. */
export function openTmpfile(dir: string, mode = 0o644, at: DirRef = CWD): number {
  const r = lib.symbols.openat(at.fd, cstr(dir), O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
  return check(r, "open(O_TMPFILE)", under(at, dir));
}

/** close(2). */
export function close(fd: number): void {
  check(lib.symbols.close(fd), "close", `fd ${fd}`);
}

/** read(2) into `buf`; returns the byte count, 0 at end of file. */
export function read(fd: number, buf: Uint8Array, what = `fd ${fd}`): number {
  return check(lib.symbols.read(fd, buf, BigInt(buf.length)), "read", what);
}

/** pread(2) into `buf` at `offset`; returns the byte count, 0 at end of file. */
export function pread(fd: number, buf: Uint8Array, offset: number, what = `fd ${fd}`): number {
  return check(lib.symbols.pread(fd, buf, BigInt(buf.length), BigInt(offset)), "pread", what);
}

/** Writes all of `buf` to `fd`, looping over short writes. */
export function writeAll(fd: number, buf: Uint8Array, what = `fd ${fd}`): void {
  let off = 0;
  while (off < buf.length) {
    const chunk = off === 0 ? buf : buf.subarray(off);
    off += check(lib.symbols.write(fd, chunk, BigInt(chunk.length)), "write", what);
  }
}

const AT_SYMLINK_NOFOLLOW = 0x100, S_IFMT = 0o170000, S_IFREG = 0o100000, S_IFDIR = 0o040000, S_IFLNK = 0o120000;
// struct stat on x86-64: st_mode (u32) at 24, st_size (i64) at 48; 144 bytes in all.
const statBuf = new Uint8Array(144);
const statView = new DataView(statBuf.buffer);

/** What {@link lstat} reports: the file type and size. */
export interface StatInfo {
  isFile: boolean;
  isDirectory: boolean;
  isSymlink: boolean;
  size: number;
}

/**
 * lstat(2) reduced to type and size, or null when `path` (or a directory on the way) does not
 * exist. A miss throws nothing: object lookups call this for every file they store, and an
 * exception per miss (as `Deno.lstatSync` throws) costs more than the system call.
 */
export function lstat(path: string, at: DirRef = CWD): StatInfo | null {
  if (lib.symbols.fstatat(at.fd, cstr(path), statBuf, AT_SYMLINK_NOFOLLOW) === 0) {
    const type = statView.getUint32(24, true) & S_IFMT;
    const size = Number(statView.getBigInt64(48, true));
    return { isFile: type === S_IFREG, isDirectory: type === S_IFDIR, isSymlink: type === S_IFLNK, size };
  }
  const e = errnoView.getInt32();
  if (e === 2 || e === 20) return null; // ENOENT, ENOTDIR
  throw new SyscallError("lstat", under(at, path), e);
}

/** mkdir(2); false (no exception) when something already exists at `path`. */
export function mkdir(path: PathArg, mode = 0o755): boolean {
  if (lib.symbols.mkdir(cpath(path), mode) === 0) return true;
  const e = errnoView.getInt32();
  if (e === 17) return false;
  throw new SyscallError("mkdir", showPath(path), e);
}

/** mknod(2): a device node, FIFO or socket file; `mode` includes the file type bits. */
export function mknod(path: PathArg, mode: number, rdev: number): void {
  check(lib.symbols.mknod(cpath(path), mode, BigInt(rdev)), "mknod", showPath(path));
}

/** symlink(2): `path` becomes a symlink to `target`. */
export function symlink(target: PathArg, path: PathArg): void {
  check(lib.symbols.symlink(cpath(target), cpath(path)), "symlink", showPath(path));
}

/** lchown(2): owner and group of `path`, not following a symlink. */
export function lchown(path: PathArg, uid: number, gid: number): void {
  check(lib.symbols.lchown(cpath(path), uid, gid), "lchown", showPath(path));
}

/** chmod(2), with the setuid/setgid/sticky bits (follows symlinks: not for symlinks). */
export function chmod(path: PathArg, mode: number): void {
  check(lib.symbols.chmod(cpath(path), mode), "chmod", showPath(path));
}

/** lsetxattr(2): sets extended attribute `name` (raw bytes or text) of `path`, not following a symlink. */
export function lsetxattr(path: PathArg, name: PathArg, value: Uint8Array): void {
  const r = lib.symbols.lsetxattr(cpath(path), cpath(name), value, BigInt(value.length), 0);
  check(r, "lsetxattr", `${showPath(path)} ${showPath(name)}`);
}

const times = new BigInt64Array(4);
const UTIME_OMIT = (1n << 30n) - 2n;

/** utimensat(2) with AT_SYMLINK_NOFOLLOW: sets the mtime of `path` (also of a symlink), atime untouched. */
export function setMtime(path: PathArg, sec: number, nsec: number): void {
  times.set([0n, UTIME_OMIT, BigInt(sec), BigInt(nsec)]);
  check(lib.symbols.utimensat(AT_FDCWD, cpath(path), times, AT_SYMLINK_NOFOLLOW), "utimensat", showPath(path));
}

/** fsync(2). */
export function fsync(fd: number, what = `fd ${fd}`): void {
  check(lib.symbols.fsync(fd), "fsync", what);
}

/** syncfs(2): flushes the whole filesystem that holds `fd`. */
export function syncfs(fd: number, what = `fd ${fd}`): void {
  check(lib.symbols.syncfs(fd), "syncfs", what);
}

const M_ARENA_MAX = -8;

/**
 * mallopt(M_ARENA_MAX): at most `n` malloc arenas, so threads that have none yet share them. glibc
 * otherwise gives each thread that contends for one an arena of its own (layer workers, V8's
 * compiler and GC threads, FFI threads), and keeps what every arena once held. False if refused.
 */
export function limitMallocArenas(n: number): boolean {
  return lib.symbols.mallopt(M_ARENA_MAX, n) === 1;
}

/** malloc_trim(3): hands memory that is free in every malloc arena back to the kernel. */
export function mallocTrim(): void {
  lib.symbols.malloc_trim(0n);
}

const MADV_DONTNEED = 4;

/**
 * Drops this process's page-table entries of the executable, file-backed mappings of `library`
 * (the start of a file name in /proc/self/maps): code touched once, by an initialisation, stops counting in
 * resident memory, and code still in use is faulted back in from the page cache. Only r-xp
 * mappings: text is never written, so nothing is lost (writable or relocated data would be).
 */
export function dropLibraryText(library: string): void {
  for (const line of Deno.readTextFileSync("/proc/self/maps").split("\n")) {
    const [range, perms, , , , path] = line.split(/\s+/);
    if (perms !== "r-xp" || !path?.includes(`/${library}`)) continue;
    const [start, end] = range.split("-").map((h) => BigInt(`0x${h}`));
    lib.symbols.madvise(Deno.UnsafePointer.create(start), end - start, MADV_DONTNEED);
  }
}

/**
 * syncfs(2) on an FFI worker thread, so the caller keeps working while the disk is flushed. errno
 * cannot be read after a threaded call: a failure is retried on this thread, which throws with it.
 */
export async function syncfsAsync(fd: number, what = `fd ${fd}`): Promise<void> {
  if (await lib.symbols.syncfs_nb(fd) < 0) syncfs(fd, what);
}

/**
 * flock(2). With LOCK_NB, returns false instead of throwing when the lock is held elsewhere.
 */
export function flock(fd: number, op: number, what = `fd ${fd}`): boolean {
  if (lib.symbols.flock(fd, op) === 0) return true;
  const e = errnoView.getInt32();
  if (e === 11 && op & LOCK_NB) return false;
  throw new SyscallError("flock", what, e);
}

/** False once linkat(AT_EMPTY_PATH) was refused where the `/proc` route worked (no CAP_DAC_READ_SEARCH). */
let emptyPathLinks = true;
const EMPTY_PATH = cstr("");

/**
 * Gives the unnamed file `fd` (from {@link openTmpfile}) the name `path`; EEXIST if it exists.
 * Links the fd itself where allowed, else through `/proc/self/fd` (a longer path walk).
 */
export function linkFd(fd: number, path: string, at: DirRef = CWD): void {
  const dest = cstr(path);
  if (emptyPathLinks) {
    if (lib.symbols.linkat(fd, EMPTY_PATH, at.fd, dest, AT_EMPTY_PATH) === 0) return;
    const e = errnoView.getInt32();
    if (e !== 2 && e !== 1) throw new SyscallError("linkat", under(at, path), e); // ENOENT, EPERM: try /proc
  }
  const r = lib.symbols.linkat(AT_FDCWD, cstr(`/proc/self/fd/${fd}`), at.fd, dest, AT_SYMLINK_FOLLOW);
  check(r, "linkat", under(at, path));
  emptyPathLinks = false;
}

/** linkat(2) without following symlinks: a hard link `newPath` to `oldPath`. */
export function link(oldPath: PathArg, newPath: PathArg): void {
  const r = lib.symbols.linkat(AT_FDCWD, cpath(oldPath), AT_FDCWD, cpath(newPath), 0);
  check(r, "linkat", `${showPath(oldPath)} -> ${showPath(newPath)}`);
}

/** renameat2(2) with RENAME_NOREPLACE or RENAME_EXCHANGE (0 for a plain rename). */
export function renameat2(oldPath: string, newPath: string, flags: number): void {
  const r = lib.symbols.renameat2(AT_FDCWD, cstr(oldPath), AT_FDCWD, cstr(newPath), flags);
  check(r, "renameat2", `${oldPath} -> ${newPath}`);
}

/** FICLONE: makes `dstFd` share all of `srcFd`'s extents (a reflink). EOPNOTSUPP or EXDEV when it cannot. */
export function ficlone(dstFd: number, srcFd: number, what = `fd ${srcFd} -> fd ${dstFd}`): void {
  check(lib.symbols.ioctl_int(dstFd, FICLONE, BigInt(srcFd)), "ioctl(FICLONE)", what);
}

/** fs-verity hash algorithm numbers of the kernel ABI. */
export const FS_VERITY_HASH_ALG = { sha256: 1, sha512: 2 } as const;

/** FS_IOC_ENABLE_VERITY with 4 KiB blocks, no salt and no signature. `fd` must be read-only. */
export function enableVerity(fd: number, alg: keyof typeof FS_VERITY_HASH_ALG, what = `fd ${fd}`): void {
  const arg = new Uint8Array(128);
  const v = new DataView(arg.buffer);
  v.setUint32(0, 1, true);
  v.setUint32(4, FS_VERITY_HASH_ALG[alg], true);
  v.setUint32(8, 4096, true);
  check(lib.symbols.ioctl_ptr(fd, FS_IOC_ENABLE_VERITY, arg), "ioctl(FS_IOC_ENABLE_VERITY)", what);
}

/** FS_IOC_MEASURE_VERITY: the kernel's fs-verity digest of `fd`, with the algorithm number it reports. */
export function measureVerity(fd: number, what = `fd ${fd}`): { alg: number; digest: Uint8Array } {
  const arg = new Uint8Array(4 + 64);
  const v = new DataView(arg.buffer);
  v.setUint16(2, 64, true);
  check(lib.symbols.ioctl_ptr(fd, FS_IOC_MEASURE_VERITY, arg), "ioctl(FS_IOC_MEASURE_VERITY)", what);
  const size = v.getUint16(2, true);
  return { alg: v.getUint16(0, true), digest: arg.slice(4, 4 + size) };
}

/** umount2(2). */
export function umount2(path: string, flags = 0): void {
  check(lib.symbols.umount2(cstr(path), flags), "umount2", path);
}

const SYS_MOVE_MOUNT = 429n, SYS_FSOPEN = 430n, SYS_FSCONFIG = 431n, SYS_FSMOUNT = 432n;
export const FSOPEN_CLOEXEC = 1, FSMOUNT_CLOEXEC = 1;
export const FSCONFIG_SET_FLAG = 0, FSCONFIG_SET_STRING = 1, FSCONFIG_SET_FD = 5, FSCONFIG_CMD_CREATE = 6;
export const MOUNT_ATTR_RDONLY = 1, MOVE_MOUNT_F_EMPTY_PATH = 4;

/** fsopen(2): a filesystem context fd for `fsType`. */
export function fsopen(fsType: string): number {
  return check(lib.symbols.sys_fsopen(SYS_FSOPEN, cstr(fsType), FSOPEN_CLOEXEC), "fsopen", fsType);
}

/** Drains the kernel's messages ("e erofs: …") from a filesystem context fd. */
function contextMessages(fsfd: number): string {
  const buf = new Uint8Array(4096);
  const lines: string[] = [];
  for (let i = 0; i < 16; i++) {
    const n = Number(lib.symbols.read(fsfd, buf, BigInt(buf.length)));
    if (n <= 0) break;
    lines.push(new TextDecoder().decode(buf.subarray(0, n)).trim());
  }
  return lines.join("; ");
}

/**
 * fsconfig(2): sets a string (`value` given), sets a flag (`value` null), or runs FSCONFIG_CMD_CREATE
 * (`key` null). A failure carries the kernel's own message from the context.
 */
export function fsconfig(fsfd: number, key: string | null, value?: string | null): void {
  const cmd = key === null ? FSCONFIG_CMD_CREATE : value == null ? FSCONFIG_SET_FLAG : FSCONFIG_SET_STRING;
  // An empty string is a value too (SET_STRING with ""), not a flag.
  const v = value != null ? cstr(value) : null;
  const r = Number(lib.symbols.sys_fsconfig(SYS_FSCONFIG, fsfd, cmd, key === null ? null : cstr(key), v, 0));
  if (r < 0) {
    const e = errnoView.getInt32();
    const what = key === null ? "create" : value == null ? key : `${key}=${value}`;
    throw new SyscallError("fsconfig", what, e, contextMessages(fsfd) || undefined);
  }
}

/**
 * fsconfig(2) FSCONFIG_SET_FD: passes an open fd as the value of `key` (e.g. overlay `lowerdir+` with a
 * detached mount fd, kernel ≥ 6.13). A failure carries the kernel's message.
 */
export function fsconfigFd(fsfd: number, key: string, fd: number): void {
  const r = Number(lib.symbols.sys_fsconfig(SYS_FSCONFIG, fsfd, FSCONFIG_SET_FD, cstr(key), null, fd));
  if (r < 0) {
    const e = errnoView.getInt32();
    throw new SyscallError("fsconfig", `${key}=fd ${fd}`, e, contextMessages(fsfd) || undefined);
  }
}

/** fsmount(2): a detached mount fd from a created context. A failure carries the kernel's message. */
export function fsmount(fsfd: number, attrs: number): number {
  const r = Number(lib.symbols.sys_fsmount(SYS_FSMOUNT, fsfd, FSMOUNT_CLOEXEC, attrs));
  if (r < 0) {
    const e = errnoView.getInt32();
    throw new SyscallError("fsmount", `fd ${fsfd}`, e, contextMessages(fsfd) || undefined);
  }
  return r;
}

/** move_mount(2) of a detached mount fd onto `target`. */
export function moveMount(mntfd: number, target: string): void {
  const r = lib.symbols.sys_move_mount(
    SYS_MOVE_MOUNT,
    mntfd,
    cstr(""),
    AT_FDCWD,
    cstr(target),
    MOVE_MOUNT_F_EMPTY_PATH,
  );
  check(r, "move_mount", target);
}

const AF_UNIX = 1, SOCK_DGRAM = 2, SOCK_CLOEXEC = 0o2000000, MSG_DONTWAIT = 0x40;

function sockaddrUn(path: string): Uint8Array {
  const p = enc.encode(path);
  if (p.length >= 108) throw new SyscallError("sockaddr_un", path, 36);
  const sa = new Uint8Array(110);
  sa[0] = AF_UNIX;
  sa.set(p, 2);
  return sa;
}

/** A new Unix datagram socket fd. */
export function unixDatagramSocket(): number {
  return check(lib.symbols.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), "socket", "AF_UNIX/SOCK_DGRAM");
}

/** bind(2) a Unix socket to a filesystem path. */
export function bindUnix(fd: number, path: string): void {
  const sa = sockaddrUn(path);
  check(lib.symbols.bind(fd, sa, sa.length), "bind", path);
}

/** sendto(2) one datagram to the Unix socket at `path`. */
export function sendtoUnix(fd: number, data: Uint8Array, path: string): void {
  const sa = sockaddrUn(path);
  check(lib.symbols.sendto(fd, data, BigInt(data.length), 0, sa, sa.length), "sendto", path);
}

/** recv(2) one datagram without blocking; null when none is queued. */
export function recvNonBlocking(fd: number, buf: Uint8Array): number | null {
  const n = Number(lib.symbols.recv(fd, buf, BigInt(buf.length), MSG_DONTWAIT));
  if (n >= 0) return n;
  const e = errnoView.getInt32();
  if (e === 11) return null;
  throw new SyscallError("recv", `fd ${fd}`, e);
}

const dec = new TextDecoder();

/**
 * lgetxattr(2): the value of extended attribute `name` of `path` (symlinks not followed). ENODATA
 * when the attribute is absent.
 */
export function lgetxattr(path: string, name: string): Uint8Array {
  const p = cstr(path), n = cstr(name);
  // The value can grow between the size query and the read; retry on ERANGE.
  for (;;) {
    const size = check(lib.symbols.lgetxattr(p, n, null, 0n), "lgetxattr", `${path} ${name}`);
    const buf = new Uint8Array(size);
    const r = Number(lib.symbols.lgetxattr(p, n, buf, BigInt(size)));
    if (r >= 0) return buf.subarray(0, r);
    const e = errnoView.getInt32();
    if (e !== 34) throw new SyscallError("lgetxattr", `${path} ${name}`, e);
  }
}

/** llistxattr(2): the names of all extended attributes of `path` (symlinks not followed), in kernel order. */
export function llistxattr(path: string): string[] {
  const p = cstr(path);
  for (;;) {
    const size = check(lib.symbols.llistxattr(p, null, 0n), "llistxattr", path);
    if (size === 0) return [];
    const buf = new Uint8Array(size);
    const r = Number(lib.symbols.llistxattr(p, buf, BigInt(size)));
    if (r >= 0) return dec.decode(buf.subarray(0, r)).split("\0").filter((s) => s !== "");
    const e = errnoView.getInt32();
    if (e !== 34) throw new SyscallError("llistxattr", path, e);
  }
}

/** unlink(2): removes a file or symlink (never a directory). */
export function unlink(path: string): void {
  check(lib.symbols.unlink(cstr(path)), "unlink", path);
}

/**
 * Unlinks every path, `concurrency` at a time on FFI worker threads (GC removes up to hundreds of
 * thousands of files; on a slow disk this is about 3× faster). errno cannot be read after a
 * threaded call, so a failed one is retried on this thread, which throws with the real errno.
 */
export async function unlinkAll(paths: string[], concurrency = 16): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const path = paths[next++];
      if (await lib.symbols.unlink_nb(cstr(path)) < 0) unlink(path);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, paths.length) }, worker));
}

const offIn = new BigInt64Array(1);

/**
 * copy_file_range(2) of `len` bytes from `srcFd` at `srcOffset` to the current position of
 * `dstFd`, looping over short copies, so the kernel copies (or reflinks) while userspace only
 * reads for hashing. Throws a {@link SyscallError} (EXDEV, EINVAL, EOPNOTSUPP… when the pair of
 * files does not allow it) only if nothing was copied; returns the bytes copied, fewer only at end
 * of file.
 */
export function copyFileRange(srcFd: number, srcOffset: number, dstFd: number, len: number, what: string): number {
  let done = 0;
  while (done < len) {
    offIn[0] = BigInt(srcOffset + done);
    const n = Number(lib.symbols.copy_file_range(srcFd, offIn, dstFd, null, BigInt(len - done), 0));
    if (n < 0) {
      const err = new SyscallError("copy_file_range", what, errnoView.getInt32());
      // Part of the data already went: the caller cannot fall back to writing this block.
      if (done > 0) throw new Error(`${what}: copy failed part-way`, { cause: err });
      throw err;
    }
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** The errors by which copy_file_range(2) says this pair of files cannot use it (nothing copied). */
const COPY_RANGE_REFUSED = new Set(["EXDEV", "EINVAL", "EOPNOTSUPP", "ENOSYS"]);

/**
 * {@link copyFileRange}, or null when the pair of files does not allow copy_file_range (other
 * filesystems, no support): the caller then reads and writes instead.
 */
export function tryCopyFileRange(
  srcFd: number,
  srcOffset: number,
  dstFd: number,
  len: number,
  what: string,
): number | null {
  try {
    return copyFileRange(srcFd, srcOffset, dstFd, len, what);
  } catch (e) {
    if (e instanceof SyscallError && COPY_RANGE_REFUSED.has(e.code)) return null;
    throw e;
  }
}

/** lremovexattr(2): removes extended attribute `name` of `path`, not following a symlink. */
export function lremovexattr(path: PathArg, name: PathArg): void {
  check(lib.symbols.lremovexattr(cpath(path), cpath(name)), "lremovexattr", `${showPath(path)} ${showPath(name)}`);
}
