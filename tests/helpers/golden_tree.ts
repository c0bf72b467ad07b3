/**
 * Re-creates the directory the golden C images were built from (vectors/erofs/README.md §2).
 * Needs root (device nodes, chown, trusted.* xattrs).
 *
 * @module
 */
import { gen } from "./oci.ts";

function sh(cmd: string, ...args: string[]): void {
  const r = new Deno.Command(cmd, { args, stderr: "piped" }).outputSync();
  if (!r.success) throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
}

const text = (s: string) => new TextEncoder().encode(s);

/** Builds the golden tree in `dir` (which must not exist yet). */
export function makeGoldenTree(dir: string): void {
  const dirs = [
    "",
    "/files",
    "/special",
    "/xattrs",
    "/longnames",
    `/longnames/d-${"d".repeat(200)}`,
    "/nested/empty-dir",
    "/perms",
  ];
  for (const d of dirs) Deno.mkdirSync(dir + d, { recursive: true });
  let nested = `${dir}/nested`;
  for (let i = 1; i <= 20; i++) nested += `/level${i}`;
  Deno.mkdirSync(nested, { recursive: true });
  const file = (path: string, data: Uint8Array, mode = 0o644) => {
    Deno.writeFileSync(dir + path, data);
    Deno.chmodSync(dir + path, mode);
  };
  file("/files/empty", new Uint8Array(0));
  file("/files/one", text("x"));
  for (
    const [name, n] of [["s64", 64], ["s65", 65], ["s4095", 4095], ["s4096", 4096], ["s64k", 65536], ["s1m", 1048576], [
      "s1m1",
      1048577,
    ]] as const
  ) {
    file(`/files/${name}`, gen(n, name));
  }
  file("/files/dup-of-s4096", gen(4096, "s4096"));
  file("/files/hello.txt", text("hello composefs\n"));
  Deno.linkSync(`${dir}/files/hello.txt`, `${dir}/files/hardlink-to-hello`);
  Deno.symlinkSync("hello.txt", `${dir}/files/symlink-rel`);
  Deno.symlinkSync("/etc/os-release", `${dir}/files/symlink-abs`);
  Deno.symlinkSync("t".repeat(200), `${dir}/files/symlink-long-target`);
  Deno.symlinkSync("does-not-exist", `${dir}/files/symlink-dangling`);
  sh("mkfifo", "-m", "0644", `${dir}/special/fifo`);
  sh("mknod", "-m", "0644", `${dir}/special/chardev`, "c", "1", "3");
  sh("mknod", "-m", "0644", `${dir}/special/blockdev`, "b", "7", "0");
  sh("mknod", "-m", "0644", `${dir}/special/whiteout`, "c", "0", "0");
  sh("setfattr", "-n", "user.on-dir", "-v", "d", `${dir}/xattrs`);
  file("/xattrs/file", text("data\n"));
  for (
    const [n, v] of [["user.test", "hello"], ["user.empty", ""], ["user.bin", "0x00ff10"], ["security.test", "sec"], [
      "trusted.test",
      "trust",
    ]]
  ) {
    sh("setfattr", "-n", n, "-v", v, `${dir}/xattrs/file`);
  }
  Deno.symlinkSync("file", `${dir}/xattrs/link`);
  sh("setfattr", "-h", "-n", "trusted.on-symlink", "-v", "s", `${dir}/xattrs/link`);
  file(`/longnames/${"n".repeat(255)}`, text("long\n"));
  for (let i = 1; i <= 300; i++) file(`/longnames/many-${String(i).padStart(4, "0")}`, new Uint8Array(0));
  file(`${nested.slice(dir.length)}/leaf`, text("deep\n"));
  file("/perms/setuid", text("s\n"), 0o4755);
  file("/perms/setgid", text("g\n"), 0o2755);
  Deno.mkdirSync(`${dir}/perms/sticky`);
  Deno.chmodSync(`${dir}/perms/sticky`, 0o1777);
  file("/perms/owned", text("o\n"), 0o600);
  Deno.chownSync(`${dir}/perms/owned`, 1234, 5678);
  for (const d of ["", "/files", "/special", "/xattrs", "/longnames", "/nested", "/perms"]) {
    Deno.chmodSync(dir + d, 0o755);
  }
  sh("find", dir, "-exec", "touch", "-h", "-d", "@1704164645.123456789", "{}", "+");
  sh("touch", "-d", "@981173106", `${dir}/files/hello.txt`);
}
