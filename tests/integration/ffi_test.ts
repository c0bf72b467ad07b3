/**
 * ffi/libc.ts against real filesystems (loop-mounted xfs with reflink, btrfs, ext4) and the real
 * kernel mount API. Expected errnos are the ones observed on the test rig (deno-notes.md §4,
 * test-rig.md §1): this kernel has no fs-verity.
 */
import assert from "node:assert/strict";
import { createLoopFs, type LoopFs, type LoopFsKind, requireRoot, run, scratchDir } from "../helpers/fs.ts";
import * as libc from "../../ffi/libc.ts";
import { mountAt } from "../../lib/mount/mountinfo.ts";
import { randomBytes } from "../helpers/oci.ts";

const KINDS: LoopFsKind[] = ["xfs", "btrfs", "ext4"];
const enc = new TextEncoder();

/** Throws unless `fn` throws a SyscallError with `code`; checks its message names call, target and errno. */
function expectSyscallError(fn: () => unknown, call: string, target: string, code: string): libc.SyscallError {
  let e: unknown;
  try {
    fn();
  } catch (err) {
    e = err;
  }
  assert(e instanceof libc.SyscallError, `expected a SyscallError ${code}, got ${e}`);
  assert.deepEqual(e.code, code, e.message);
  assert.deepEqual(e.call, call);
  assert.deepEqual(e.target, target);
  assert(e.message.startsWith(`${call} ${target}: `), e.message);
  assert(e.message.includes(`(${code})`), e.message);
  return e;
}

/** Writes `data` to a new file at `path` through libc, returning nothing; the fd is closed. */
function writeFile(path: string, data: Uint8Array): void {
  const fd = libc.open(path, libc.O_WRONLY | libc.O_CREAT | libc.O_EXCL, 0o644);
  try {
    libc.writeAll(fd, data, path);
    libc.fsync(fd, path);
  } finally {
    libc.close(fd);
  }
}

/** The physical offsets of `path`'s extents and whether each is flagged shared, from `filefrag -v`. */
async function extents(path: string): Promise<{ physical: string; shared: boolean }[]> {
  const out = await run("filefrag", ["-s", "-v", path]);
  return out.split("\n").filter((l) => /^\s*\d+:/.test(l)).map((l) => {
    const cols = l.split(/\s+/).filter((c) => c !== "");
    return { physical: cols[3], shared: /\bshared\b/.test(l) };
  });
}

for (const kind of KINDS) {
  Deno.test(`ffi on ${kind}: O_TMPFILE, linkat, renameat2, fsync, syncfs, verity, FICLONE`, async () => {
    requireRoot();
    await using fs = await createLoopFs(kind);
    const dir = fs.mountPoint;
    await tmpfileAndLink(dir);
    renames(dir);
    syncs(dir);
    verityUnsupported(fs);
    await reflink(fs);
  });
}

async function tmpfileAndLink(dir: string): Promise<void> {
  const data = enc.encode("made in the dark\n");
  const fd = libc.openTmpfile(dir, 0o600);
  try {
    libc.writeAll(fd, data);
    // Unnamed until linked.
    assert.deepEqual([...Deno.readDirSync(dir)].filter((e) => e.name !== "lost+found"), []);
    libc.linkFd(fd, `${dir}/named`);
    expectSyscallError(() => libc.linkFd(fd, `${dir}/named`), "linkat", `${dir}/named`, "EEXIST");
  } finally {
    libc.close(fd);
  }
  assert.deepEqual(await Deno.readFile(`${dir}/named`), data);
  assert.deepEqual((await Deno.stat(`${dir}/named`)).mode! & 0o777, 0o600);
  libc.link(`${dir}/named`, `${dir}/hard`);
  assert.deepEqual((await Deno.stat(`${dir}/named`)).nlink, 2);
  expectSyscallError(
    () => libc.link(`${dir}/missing`, `${dir}/x`),
    "linkat",
    `${dir}/missing -> ${dir}/x`,
    "ENOENT",
  );
  expectSyscallError(() => libc.openTmpfile(`${dir}/missing`), "open(O_TMPFILE)", `${dir}/missing`, "ENOENT");
}

function renames(dir: string): void {
  writeFile(`${dir}/a`, enc.encode("A"));
  writeFile(`${dir}/b`, enc.encode("B"));
  expectSyscallError(
    () => libc.renameat2(`${dir}/a`, `${dir}/b`, libc.RENAME_NOREPLACE),
    "renameat2",
    `${dir}/a -> ${dir}/b`,
    "EEXIST",
  );
  assert.deepEqual(Deno.readTextFileSync(`${dir}/b`), "B");
  libc.renameat2(`${dir}/a`, `${dir}/b`, libc.RENAME_EXCHANGE);
  assert.deepEqual(Deno.readTextFileSync(`${dir}/a`), "B");
  assert.deepEqual(Deno.readTextFileSync(`${dir}/b`), "A");
  libc.renameat2(`${dir}/a`, `${dir}/c`, libc.RENAME_NOREPLACE);
  assert.deepEqual(Deno.readTextFileSync(`${dir}/c`), "B");
  expectSyscallError(
    () => libc.renameat2(`${dir}/a`, `${dir}/d`, libc.RENAME_EXCHANGE),
    "renameat2",
    `${dir}/a -> ${dir}/d`,
    "ENOENT",
  );
}

function syncs(dir: string): void {
  const fd = libc.open(`${dir}/c`, libc.O_RDONLY);
  try {
    libc.fsync(fd, `${dir}/c`);
    libc.syncfs(fd, `${dir}/c`);
  } finally {
    libc.close(fd);
  }
  const dfd = libc.open(dir, libc.O_RDONLY | libc.O_DIRECTORY);
  try {
    libc.fsync(dfd, dir);
  } finally {
    libc.close(dfd);
  }
  expectSyscallError(() => libc.fsync(9999, "nothing"), "fsync", "nothing", "EBADF");
}

function verityUnsupported(fs: LoopFs): void {
  // The kernel has no CONFIG_FS_VERITY: ext4/btrfs answer EOPNOTSUPP, xfs does not know the ioctls.
  const code = fs.kind === "xfs" ? "ENOTTY" : "EOPNOTSUPP";
  const path = `${fs.mountPoint}/c`;
  const fd = libc.open(path, libc.O_RDONLY);
  try {
    expectSyscallError(() => libc.measureVerity(fd, path), "ioctl(FS_IOC_MEASURE_VERITY)", path, code);
    expectSyscallError(
      () => libc.enableVerity(fd, "sha256", path),
      "ioctl(FS_IOC_ENABLE_VERITY)",
      path,
      code,
    );
  } finally {
    libc.close(fd);
  }
}

async function reflink(fs: LoopFs): Promise<void> {
  const src = `${fs.mountPoint}/big`, dst = `${fs.mountPoint}/clone`;
  const data = randomBytes(4 << 20);
  writeFile(src, data);
  const s = libc.open(src, libc.O_RDONLY);
  const d = libc.open(dst, libc.O_WRONLY | libc.O_CREAT | libc.O_EXCL);
  try {
    if (fs.kind === "ext4") {
      expectSyscallError(
        () => libc.ficlone(d, s, `${src} -> ${dst}`),
        "ioctl(FICLONE)",
        `${src} -> ${dst}`,
        "EOPNOTSUPP",
      );
      return;
    }
    libc.ficlone(d, s, `${src} -> ${dst}`);
  } finally {
    libc.close(s);
    libc.close(d);
  }
  assert.deepEqual(await Deno.readFile(dst), data);
  const [a, b] = [await extents(src), await extents(dst)];
  assert(a.length > 0, "filefrag found no extents");
  assert.deepEqual(a.map((x) => x.physical), b.map((x) => x.physical), "clone does not share the source's blocks");
  assert([...a, ...b].every((x) => x.shared), "filefrag does not flag the extents as shared");
}

Deno.test("ffi: FICLONE across filesystems is EXDEV", async () => {
  requireRoot();
  await using xfs = await createLoopFs("xfs");
  await using btrfs = await createLoopFs("btrfs");
  const src = `${xfs.mountPoint}/f`, dst = `${btrfs.mountPoint}/f`;
  writeFile(src, randomBytes(8192));
  const s = libc.open(src, libc.O_RDONLY);
  const d = libc.open(dst, libc.O_WRONLY | libc.O_CREAT);
  try {
    expectSyscallError(() => libc.ficlone(d, s, `${src} -> ${dst}`), "ioctl(FICLONE)", `${src} -> ${dst}`, "EXDEV");
  } finally {
    libc.close(s);
    libc.close(d);
  }
});

/** A `flock(1)` process holding a lock on `path` until {@link release}d. */
async function holdLock(path: string, mode: "-s" | "-x") {
  const child = new Deno.Command("flock", {
    args: [mode, path, "-c", "echo locked; read line || true"],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  assert.deepEqual(new TextDecoder().decode(value).trim(), "locked");
  reader.releaseLock();
  return {
    async release() {
      await child.stdin.close();
      const status = await child.status;
      await child.stdout.cancel();
      assert.deepEqual(status.code, 0);
    },
  };
}

/** Whether `flock(1)` in another process gets the lock on `path` without waiting. */
async function otherCanLock(path: string, mode: "-s" | "-x"): Promise<boolean> {
  const r = await new Deno.Command("flock", { args: ["-n", mode, path, "true"], stderr: "null" }).output();
  return r.code === 0;
}

Deno.test("ffi: limitMallocArenas keeps new threads from getting malloc arenas of their own", async () => {
  // glibc's malloc_stats(3) lists every arena; the child's workers start after the limit.
  const arenas = async (mode: "limit" | "none") => {
    const child = new URL("../fixtures/malloc_arenas.ts", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", "--quiet", child, mode] }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    return new TextDecoder().decode(out.stderr).split("\n").filter((l) => /^Arena \d+:/.test(l)).length;
  };
  const [limited, unlimited] = [await arenas("limit"), await arenas("none")];
  assert(limited > 0 && limited < unlimited, `${limited} arenas with the limit, ${unlimited} without`);
});

Deno.test("ffi: flock shared, exclusive and LOCK_NB against another process", async () => {
  requireRoot();
  await using dir = await scratchDir();
  const path = `${dir.path}/lock`;
  writeFile(path, new Uint8Array());
  const fd = libc.open(path, libc.O_RDONLY);
  try {
    // Another process holds it exclusively: neither of our non-blocking attempts succeeds.
    let other = await holdLock(path, "-x");
    assert.deepEqual(libc.flock(fd, libc.LOCK_EX | libc.LOCK_NB, path), false);
    assert.deepEqual(libc.flock(fd, libc.LOCK_SH | libc.LOCK_NB, path), false);
    await other.release();

    // Another process holds it shared: we may share, not take it exclusively.
    other = await holdLock(path, "-s");
    assert.deepEqual(libc.flock(fd, libc.LOCK_SH | libc.LOCK_NB, path), true);
    libc.flock(fd, libc.LOCK_UN, path);
    assert.deepEqual(libc.flock(fd, libc.LOCK_EX | libc.LOCK_NB, path), false);
    await other.release();

    // We hold it: exclusive keeps everyone out, shared lets sharers in.
    assert.deepEqual(libc.flock(fd, libc.LOCK_EX, path), true);
    assert.deepEqual(await otherCanLock(path, "-s"), false);
    assert.deepEqual(libc.flock(fd, libc.LOCK_SH, path), true);
    assert.deepEqual(await otherCanLock(path, "-s"), true);
    assert.deepEqual(await otherCanLock(path, "-x"), false);
    libc.flock(fd, libc.LOCK_UN, path);
    assert.deepEqual(await otherCanLock(path, "-x"), true);
  } finally {
    libc.close(fd);
  }
  expectSyscallError(() => libc.flock(9999, libc.LOCK_EX, "nothing"), "flock", "nothing", "EBADF");
});

Deno.test("ffi: lgetxattr/llistxattr agree with setfattr/getfattr", async () => {
  requireRoot();
  await using fs = await createLoopFs("ext4");
  const file = `${fs.mountPoint}/file`, link = `${fs.mountPoint}/link`;
  writeFile(file, enc.encode("data\n"));
  Deno.symlinkSync("file", link);
  await run("setfattr", ["-n", "user.test", "-v", "hello", file]);
  await run("setfattr", ["-n", "user.bin", "-v", "0x00ff10", file]);
  await run("setfattr", ["-n", "user.empty", file]);
  await run("setfattr", ["-h", "-n", "trusted.on-symlink", "-v", "s", link]);

  assert.deepEqual(libc.llistxattr(file).sort(), ["user.bin", "user.empty", "user.test"]);
  assert.deepEqual(new TextDecoder().decode(libc.lgetxattr(file, "user.test")), "hello");
  assert.deepEqual(libc.lgetxattr(file, "user.bin"), new Uint8Array([0, 0xff, 0x10]));
  assert.deepEqual(libc.lgetxattr(file, "user.empty"), new Uint8Array());
  // Not following the symlink: its own xattr, not the target's.
  assert.deepEqual(libc.llistxattr(link), ["trusted.on-symlink"]);
  assert.deepEqual(new TextDecoder().decode(libc.lgetxattr(link, "trusted.on-symlink")), "s");
  const getfattr = await run("getfattr", ["--absolute-names", "-h", "-d", "-m", "-", "-e", "hex", file]);
  for (const name of libc.llistxattr(file)) {
    const hex = Array.from(libc.lgetxattr(file, name), (b) => b.toString(16).padStart(2, "0")).join("");
    assert(getfattr.includes(hex ? `${name}=0x${hex}` : name), `${name} not in ${getfattr}`);
  }
  expectSyscallError(() => libc.lgetxattr(file, "user.none"), "lgetxattr", `${file} user.none`, "ENODATA");
  expectSyscallError(() => libc.llistxattr(`${fs.mountPoint}/nope`), "llistxattr", `${fs.mountPoint}/nope`, "ENOENT");
});

Deno.test("ffi: new mount API mounts a read-only tmpfs; kernel messages and umount2 errors", async () => {
  requireRoot();
  await using dir = await scratchDir();
  const target = `${dir.path}/mnt`;
  Deno.mkdirSync(target);

  const bad = libc.fsopen("tmpfs");
  try {
    const e = expectSyscallError(() => libc.fsconfig(bad, "nonsense", "1"), "fsconfig", "nonsense=1", "EINVAL");
    assert.match(e.message, /tmpfs: Unknown parameter 'nonsense'/);
    // An empty string is a string value, not a flag.
    const empty = expectSyscallError(() => libc.fsconfig(bad, "size", ""), "fsconfig", "size=", "EINVAL");
    assert.match(empty.message, /tmpfs: Bad value for 'size'$/);
    libc.fsconfig(bad, "source", "");
    const fdParam = expectSyscallError(
      () => libc.fsconfigFd(bad, "nonsense", 0),
      "fsconfig",
      "nonsense=fd 0",
      "EINVAL",
    );
    assert.match(fdParam.message, /tmpfs: Unknown parameter 'nonsense'$/);
    // fsmount before the superblock exists.
    const early = expectSyscallError(() => libc.fsmount(bad, 0), "fsmount", `fd ${bad}`, "EINVAL");
    assert.doesNotMatch(early.message, /Bad value/, "messages already read must not be repeated");
  } finally {
    libc.close(bad);
  }
  expectSyscallError(() => libc.fsopen("no-such-fs"), "fsopen", "no-such-fs", "ENODEV");

  const fsfd = libc.fsopen("tmpfs");
  let mfd: number;
  try {
    libc.fsconfig(fsfd, "size", "1m");
    libc.fsconfig(fsfd, null);
    mfd = libc.fsmount(fsfd, libc.MOUNT_ATTR_RDONLY);
  } finally {
    libc.close(fsfd);
  }
  try {
    libc.moveMount(mfd, target);
  } finally {
    libc.close(mfd);
  }
  const m = mountAt(target);
  assert.deepEqual(m?.fsType, "tmpfs");
  assert(m!.mountOptions.split(",").includes("ro"), m!.mountOptions);
  expectSyscallError(() => libc.open(`${target}/x`, libc.O_WRONLY | libc.O_CREAT), "open", `${target}/x`, "EROFS");

  const sub = `${dir.path}/not-a-mount`;
  Deno.mkdirSync(sub);
  expectSyscallError(() => libc.umount2(sub), "umount2", sub, "EINVAL");
  libc.umount2(target);
  assert.deepEqual(mountAt(target), null);
  expectSyscallError(() => libc.umount2(target, libc.MNT_DETACH), "umount2", target, "EINVAL");
});
