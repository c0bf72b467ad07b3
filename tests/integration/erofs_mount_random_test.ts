/**
 * Randomised trees through the whole chain, compared with independent tools: a real directory
 * (files of 0…1 MiB around the 64-byte and 4 KiB edges, symlinks, hardlinks, fifos, devices, a
 * whiteout, xattrs of the user/trusted/security namespaces, nanosecond mtimes) →
 * `bootcfs mkcomposefs --digest-store` → `bootcfs mount --insecure` (kernel EROFS + overlayfs) →
 * every entry read back with GNU find/stat, sha256sum and getfattr equals the source directory.
 */
import assert from "node:assert/strict";
import { bootcfs, run } from "../helpers/cli.ts";
import { requireRoot, scratchDir } from "../helpers/fs.ts";

/** A small deterministic PRNG, so a failing seed can be replayed. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  const next = () => (x ^= x << 13, x ^= x >>> 17, x ^= x << 5, (x >>> 0) / 2 ** 32);
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(a: T[]) => a[Math.floor(next() * a.length)] };
}

const SIZES = [0, 1, 63, 64, 65, 4095, 4096, 4097, 65536, 1 << 20];

async function sh(cmd: string, args: string[]) {
  await run(cmd, args);
}

/** Builds a random tree under `root`; returns the path of its whiteout (a char 0:0 device). */
async function buildTree(root: string, seed: number): Promise<string> {
  const r = rng(seed);
  const dirs = [root];
  const files: string[] = [];
  const all: string[] = [];
  const name = (i: number) => r.pick(["f", "data", "x", "ünï", "sp ace", "a".repeat(200)]) + `-${i}`;
  for (let i = 0; i < 180; i++) {
    const parent = r.pick(dirs);
    const p = `${parent}/${name(i)}`;
    const kind = r.int(10);
    if (kind < 2) {
      Deno.mkdirSync(p, { mode: 0o755 });
      dirs.push(p);
    } else if (kind < 6) {
      const size = r.next() < 0.7 ? r.pick(SIZES) : r.int(1 << 20);
      const data = new Uint8Array(size);
      for (let k = 0; k < size; k += 4096) data[k] = r.int(256);
      if (size) data[size - 1] = seed & 0xff;
      Deno.writeFileSync(p, data, { mode: r.pick([0o644, 0o600, 0o755, 0o4755, 0o2711]) });
      Deno.chmodSync(p, r.pick([0o644, 0o600, 0o755, 0o4755, 0o2711]));
      files.push(p);
    } else if (kind < 7) {
      Deno.symlinkSync(r.pick(["target", "../up", "/abs/path", "x".repeat(1000)]), p);
    } else if (kind < 8 && files.length) {
      Deno.linkSync(r.pick(files), p);
      continue; // shares the inode (and so the metadata) of its target
    } else if (kind < 9) {
      await sh("mkfifo", [p]);
    } else {
      await sh("mknod", [p, r.pick(["c", "b"]), String(1 + r.int(200)), String(r.int(256))]);
    }
    all.push(p);
    if (r.next() < 0.5) await sh("chown", ["-h", `${r.int(70000)}:${r.int(70000)}`, p]);
    if (r.next() < 0.4) {
      // The kernel allows user.* only on regular files and directories.
      const plain = kind < 6;
      const ns = r.pick(plain ? ["user", "trusted", "security"] : ["trusted", "security"]);
      const value = r.pick(["v", "", "0x00ff10", "a".repeat(300)]);
      await sh("setfattr", ["-h", "-n", `${ns}.k${r.int(5)}`, "-v", value === "" ? '""' : value, p]);
    }
  }
  const whiteout = `${root}/whiteout`;
  await sh("mknod", [whiteout, "c", "0", "0"]);
  all.push(whiteout);
  // Timestamps last (creating entries changes their parents' mtimes), deepest first.
  for (const p of [...all, ...dirs].sort((a, b) => b.length - a.length)) {
    await sh("touch", ["-h", "-d", `@${1600000000 + r.int(100000000)}.${String(r.int(1e9)).padStart(9, "0")}`, p]);
  }
  return whiteout;
}

/** One line per entry: path, type, mode, owner, mtime (ns), rdev, symlink target, content hash, xattrs. */
async function describe(root: string, skip: string[]): Promise<string[]> {
  const listing = await run("find", [root, "-mindepth", "1", "-printf", "%P\\0%y\\0%#m\\0%U\\0%G\\0%T@\\0%l\\0\\n"]);
  const out: string[] = [];
  for (const line of listing.split("\n").filter(Boolean)) {
    const [rel, type, mode, uid, gid, mtime, link] = line.split("\0");
    if (skip.includes(rel)) continue;
    const p = `${root}/${rel}`;
    let extra = "";
    if (type === "f") extra = (await run("sha256sum", [p])).split(" ")[0];
    if (type === "c" || type === "b") extra = (await run("stat", ["-c", "%t:%T", p])).trim();
    const xattrs = (await run("getfattr", ["-h", "-d", "-m", "-", "-e", "hex", "--absolute-names", p]))
      .split("\n").filter((l) => l.includes("=") && !/^(trusted|user)\.overlay\./.test(l)).sort().join(",");
    out.push([rel, type, mode, uid, gid, mtime, link, extra, xattrs].join(" | "));
  }
  return out.sort();
}

Deno.test("random trees: mkcomposefs, a real composefs mount, and read back equal", async () => {
  requireRoot();
  await using s = await scratchDir();
  for (const seed of [1, 2, 3]) {
    const src = `${s.path}/src-${seed}`, objs = `${s.path}/objs-${seed}`, mnt = `${s.path}/mnt-${seed}`;
    Deno.mkdirSync(src);
    Deno.mkdirSync(mnt);
    await buildTree(src, seed);
    const img = `${s.path}/img-${seed}.cfs`;
    const made = await bootcfs(["mkcomposefs", "--digest-store", objs, src, img]);
    assert.equal(made.code, 0, made.stderr);
    await run("fsck.erofs", [img]);
    const mounted = await bootcfs(["mount", "--insecure", "--basedir", objs, img, mnt]);
    assert.equal(mounted.code, 0, mounted.stderr);
    try {
      const expected = await describe(src, ["whiteout"]);
      assert.ok(expected.length > 100, `seed ${seed}: only ${expected.length} entries`);
      assert.deepEqual(await describe(mnt, ["whiteout"]), expected, `seed ${seed}`);
      // Through composefs the whiteout is an empty file that carries the overlay whiteout xattr.
      const wh = Deno.lstatSync(`${mnt}/whiteout`);
      assert.ok(wh.isFile && wh.size === 0);
      assert.match(await run("getfattr", ["-h", "-d", "-m", "-", `${mnt}/whiteout`]), /trusted\.overlay\.whiteout/);
    } finally {
      const un = await bootcfs(["umount", mnt]);
      assert.equal(un.code, 0, un.stderr);
    }
  }
});
