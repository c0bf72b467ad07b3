/**
 * ffi/libc.ts error reporting that needs no root: every failure is a SyscallError naming the call,
 * the path (or fd) and the errno, with the errno's symbolic name.
 */
import assert from "node:assert/strict";
import * as libc from "../../ffi/libc.ts";

function syscallError(fn: () => unknown): libc.SyscallError {
  try {
    fn();
  } catch (e) {
    assert(e instanceof libc.SyscallError, `not a SyscallError: ${e}`);
    return e;
  }
  assert.fail("did not throw");
}

Deno.test("SyscallError: message is `call target: strerror (CODE)` plus the kernel's detail", () => {
  const e = new libc.SyscallError("open", "/x", 2);
  assert.equal(e.message, "open /x: No such file or directory (ENOENT)");
  assert.equal(e.name, "SyscallError");
  assert.deepEqual([e.call, e.target, e.errno, e.code], ["open", "/x", 2, "ENOENT"]);
  assert.equal(
    new libc.SyscallError("fsconfig", "create", 22, "e erofs: bad").message,
    "fsconfig create: Invalid argument (EINVAL): e erofs: bad",
  );
  const unknown = new libc.SyscallError("ioctl", "fd 3", 4095);
  assert.equal(unknown.code, "E4095");
  assert.match(unknown.message, /^ioctl fd 3: .*\(E4095\)$/);
});

Deno.test("open: ENOENT, ENOTDIR, EISDIR and EEXIST name the path", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const missing = `${dir}/missing`;
    let e = syscallError(() => libc.open(missing, libc.O_RDONLY));
    assert.deepEqual([e.call, e.target, e.code, e.errno], ["open", missing, "ENOENT", 2]);
    assert.equal(e.message, `open ${missing}: No such file or directory (ENOENT)`);

    await Deno.writeTextFile(`${dir}/f`, "x");
    e = syscallError(() => libc.open(`${dir}/f/sub`, libc.O_RDONLY));
    assert.equal(e.code, "ENOTDIR");
    e = syscallError(() => libc.open(dir, libc.O_WRONLY));
    assert.equal(e.code, "EISDIR");
    e = syscallError(() => libc.open(`${dir}/f`, libc.O_WRONLY | libc.O_CREAT | libc.O_EXCL));
    assert.deepEqual([e.target, e.code], [`${dir}/f`, "EEXIST"]);
    e = syscallError(() => libc.open(`${dir}/f`, libc.O_RDONLY | libc.O_DIRECTORY));
    assert.equal(e.code, "ENOTDIR");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fd calls on a bad fd report EBADF with the fd or the given name", () => {
  let e = syscallError(() => libc.close(9999));
  assert.deepEqual([e.call, e.target, e.code], ["close", "fd 9999", "EBADF"]);
  e = syscallError(() => libc.read(9999, new Uint8Array(1), "some file"));
  assert.deepEqual([e.call, e.target, e.code], ["read", "some file", "EBADF"]);
  e = syscallError(() => libc.pread(9999, new Uint8Array(1), 0));
  assert.deepEqual([e.call, e.target, e.code], ["pread", "fd 9999", "EBADF"]);
  e = syscallError(() => libc.writeAll(9999, new Uint8Array(1)));
  assert.deepEqual([e.call, e.code], ["write", "EBADF"]);
  e = syscallError(() => libc.ficlone(9998, 9999));
  assert.deepEqual([e.call, e.target, e.code], ["ioctl(FICLONE)", "fd 9999 -> fd 9998", "EBADF"]);
  e = syscallError(() => libc.measureVerity(9999));
  assert.deepEqual([e.call, e.code], ["ioctl(FS_IOC_MEASURE_VERITY)", "EBADF"]);
});

Deno.test("path calls name both paths; xattr calls name path and attribute", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = `${dir}/a`, b = `${dir}/b`;
    let e = syscallError(() => libc.renameat2(a, b, libc.RENAME_NOREPLACE));
    assert.deepEqual([e.call, e.target, e.code], ["renameat2", `${a} -> ${b}`, "ENOENT"]);
    e = syscallError(() => libc.link(a, b));
    assert.deepEqual([e.call, e.target, e.code], ["linkat", `${a} -> ${b}`, "ENOENT"]);
    e = syscallError(() => libc.llistxattr(a));
    assert.deepEqual([e.call, e.target, e.code], ["llistxattr", a, "ENOENT"]);
    e = syscallError(() => libc.lgetxattr(a, "user.x"));
    assert.deepEqual([e.call, e.target, e.code], ["lgetxattr", `${a} user.x`, "ENOENT"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("unix datagram sockets: errors name the socket path", async () => {
  const dir = await Deno.makeTempDir();
  const fd = libc.unixDatagramSocket();
  try {
    const path = `${dir}/sock`;
    libc.bindUnix(fd, path);
    assert.equal(libc.recvNonBlocking(fd, new Uint8Array(16)), null);
    let e = syscallError(() => libc.bindUnix(fd, `${dir}/other`));
    assert.deepEqual([e.call, e.target, e.code], ["bind", `${dir}/other`, "EINVAL"]);
    const fd2 = libc.unixDatagramSocket();
    try {
      e = syscallError(() => libc.bindUnix(fd2, path));
      assert.deepEqual([e.call, e.target, e.code], ["bind", path, "EADDRINUSE"]);
      e = syscallError(() => libc.sendtoUnix(fd2, new Uint8Array([1]), `${dir}/nobody`));
      assert.deepEqual([e.call, e.target, e.code], ["sendto", `${dir}/nobody`, "ENOENT"]);
      const long = `${dir}/${"x".repeat(120)}`;
      e = syscallError(() => libc.sendtoUnix(fd2, new Uint8Array([1]), long));
      assert.deepEqual([e.call, e.target, e.code], ["sockaddr_un", long, "ENAMETOOLONG"]);
      libc.sendtoUnix(fd2, new Uint8Array([7, 8]), path);
    } finally {
      libc.close(fd2);
    }
    const buf = new Uint8Array(16);
    assert.equal(libc.recvNonBlocking(fd, buf), 2);
    assert.deepEqual([...buf.subarray(0, 2)], [7, 8]);
  } finally {
    libc.close(fd);
    await Deno.remove(dir, { recursive: true });
  }
});
