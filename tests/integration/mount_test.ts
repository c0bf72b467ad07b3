/**
 * Real composefs mounts of the golden C images (vectors/erofs/), read back through the mount and
 * compared with C's own dump of the tree (`composefs-info dump`), using independent tools: GNU
 * `stat` for metadata, `fsverity digest` for external content, llistxattr/lgetxattr for xattrs.
 * This kernel has no fs-verity, so content mounts are insecure; the secure path must be refused.
 */
import assert from "node:assert/strict";
import * as libc from "../../ffi/libc.ts";
import { errorChain } from "../../lib/error/mod.ts";
import { type ComposefsMountOptions, mountComposefs, unmountComposefs } from "../../lib/mount/mod.ts";
import { mountAt, readMountInfo } from "../../lib/mount/mountinfo.ts";
import { bootcfs } from "../helpers/cli.ts";
import { createLoopFs, requireRoot, run, scratchDir } from "../helpers/fs.ts";
import { GOLDEN_OBJECTS, writeGoldenObjects } from "../helpers/golden.ts";
import { VECTORS } from "../helpers/paths.ts";

const ERO = `${VECTORS}/erofs`;
/** Written by the writer for overlayfs itself; not part of the tree the user sees (test-rig.md §4). */
const OVERLAY_XATTR = /^(trusted|user)\.overlay\./;

/** One line of a composefs dump, minimally parsed: enough to compare a tree, no validation. */
interface DumpLine {
  size: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  /** `sec.nnnnnnnnn` (nine digits). */
  mtime: string;
  payload: string | null;
  content: Uint8Array | null;
  digest: string | null;
  xattrs: Map<string, Uint8Array>;
}

/** Undoes the dumpfile escapes (`\xNN`, `\\`, `\n`, `\r`, `\t`) into bytes. */
function unescapeBytes(s: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== "\\") {
      out.push(s.charCodeAt(i));
      continue;
    }
    const c = s[++i];
    if (c === "x") {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push({ "\\": 92, n: 10, r: 13, t: 9 }[c] ?? c.charCodeAt(0));
  }
  return new Uint8Array(out);
}
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const opt = (f: string) => f === "-" ? null : f;

/** Parses C's long-form dump (every line has all fields, hardlinks included) into path → line. */
function parseDump(dump: string): Map<string, DumpLine> {
  const tree = new Map<string, DumpLine>();
  for (const line of dump.split("\n")) {
    if (line === "") continue;
    const f = line.split(" ");
    const [sec, nsec] = f[7].split(".");
    tree.set(text(unescapeBytes(f[0])), {
      size: Number(f[1]),
      mode: parseInt(f[2].replace("@", ""), 8),
      nlink: Number(f[3]),
      uid: Number(f[4]),
      gid: Number(f[5]),
      rdev: Number(f[6]),
      mtime: `${sec}.${nsec.padEnd(9, "0")}`,
      payload: opt(f[8]) === null ? null : text(unescapeBytes(f[8])),
      content: opt(f[9]) === null ? null : unescapeBytes(f[9]),
      digest: opt(f[10]),
      xattrs: new Map(
        f.slice(11).map((kv) => {
          const eq = kv.indexOf("=");
          return [text(unescapeBytes(kv.slice(0, eq))), unescapeBytes(kv.slice(eq + 1))];
        }),
      ),
    });
  }
  return tree;
}

/** What GNU stat reports for one path through the mount. */
interface Seen {
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  rdev: number;
  mtime: string;
  ino: number;
}

/** Every entry below `mnt` as `stat(1)` sees it (symlinks not followed), keyed by `/`-rooted path. */
async function statTree(mnt: string): Promise<Map<string, Seen>> {
  const out = await run("find", [
    mnt,
    "-exec",
    "stat",
    "--printf",
    "%n\\0%f\\0%h\\0%u\\0%g\\0%s\\0%t\\0%T\\0%.9Y\\0%i\\0",
    "{}",
    "+",
  ]);
  const f = out.split("\0");
  const seen = new Map<string, Seen>();
  for (let i = 0; i + 10 <= f.length; i += 10) {
    const major = parseInt(f[i + 6], 16), minor = parseInt(f[i + 7], 16);
    seen.set(f[i] === mnt ? "/" : f[i].slice(mnt.length), {
      mode: parseInt(f[i + 1], 16),
      nlink: Number(f[i + 2]),
      uid: Number(f[i + 3]),
      gid: Number(f[i + 4]),
      size: Number(f[i + 5]),
      // The dump's RDEV is the raw dev_t (new_encode_dev).
      rdev: (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12),
      mtime: f[i + 8],
      ino: Number(f[i + 9]),
    });
  }
  return seen;
}

/** fs-verity sha256 digests (as `fsverity digest` prints them) of `paths`. */
async function verityDigests(paths: string[]): Promise<Map<string, string>> {
  if (paths.length === 0) return new Map();
  const out = await run("fsverity", ["digest", "--hash-alg=sha256", "--block-size=4096", ...paths]);
  return new Map(
    out.trim().split("\n").map((l) => {
      const [d, ...p] = l.split(" ");
      return [p.join(" "), d.replace(/^sha256:/, "")];
    }),
  );
}

function userXattrs(path: string): Map<string, Uint8Array> {
  return new Map(
    libc.llistxattr(path).filter((n) => !OVERLAY_XATTR.test(n)).map((n) => [n, libc.lgetxattr(path, n)]),
  );
}

const S_IFMT = 0o170000, S_IFREG = 0o100000, S_IFLNK = 0o120000, S_IFCHR = 0o020000, S_IFBLK = 0o060000;

/**
 * Differences between the tree mounted at `mnt` and `expected`, one line each (empty = equal):
 * type and mode, owner, mtime (ns), rdev, size and content of regular files, symlink targets,
 * xattrs (without the overlay's own), and entries present on one side only.
 */
async function diffTree(mnt: string, expected: Map<string, DumpLine>, skip: string[] = []): Promise<string[]> {
  const seen = await statTree(mnt);
  const diffs: string[] = [];
  for (const p of seen.keys()) if (!expected.has(p) && !skip.includes(p)) diffs.push(`${p}: not in the dump`);
  const external = [...expected].filter(([p, e]) => e.digest && seen.has(p)).map(([p]) => mnt + p);
  const digests = await verityDigests(external);
  for (const [p, e] of expected) {
    if (skip.includes(p)) continue;
    const s = seen.get(p);
    if (!s) {
      diffs.push(`${p}: missing from the mount`);
      continue;
    }
    const d = (what: string, want: unknown, got: unknown) => {
      if (want !== got) diffs.push(`${p}: ${what} ${got}, expected ${want}`);
    };
    d("mode", e.mode.toString(8), s.mode.toString(8));
    d("uid", e.uid, s.uid);
    d("gid", e.gid, s.gid);
    d("mtime", e.mtime, s.mtime);
    const type = e.mode & S_IFMT;
    if (type === S_IFCHR || type === S_IFBLK) d("rdev", e.rdev, s.rdev);
    if (type === S_IFREG) {
      d("size", e.size, s.size);
      if (e.digest) d("fs-verity digest", e.digest, digests.get(mnt + p));
      else d("content", text(e.content ?? new Uint8Array()), text(Deno.readFileSync(mnt + p)));
    }
    if (type === S_IFLNK) d("symlink target", e.payload, Deno.readLinkSync(mnt + p));
    const want = [...e.xattrs].filter(([k]) => !OVERLAY_XATTR.test(k)).sort();
    const got = [...userXattrs(mnt + p)].sort();
    d("xattrs", JSON.stringify(want.map(([k, v]) => [k, [...v]])), JSON.stringify(got.map(([k, v]) => [k, [...v]])));
  }
  return diffs;
}

/** A scratch directory with the golden objects in `objects/` and an empty `mnt/`. */
async function rig(except: string[] = []) {
  const dir = await scratchDir("bootcfs-mount-");
  await writeGoldenObjects(`${dir.path}/objects`, except);
  await Deno.mkdir(`${dir.path}/mnt`);
  return Object.assign(dir, { objects: `${dir.path}/objects`, mnt: `${dir.path}/mnt` });
}

function insecure(image: string, objects: string, more: Partial<ComposefsMountOptions> = {}): ComposefsMountOptions {
  return { image: `${ERO}/${image}`, objectDirs: [objects], insecure: true, ...more };
}

/** No mount at `mnt`, and no temporary EROFS mount point of ours left anywhere. */
function assertNothingMounted(mnt: string): void {
  assert.equal(mountAt(mnt), null, `${mnt} is still mounted`);
  const leftovers = readMountInfo().filter((m) => m.mountPoint.includes("/.composefs."));
  assert.deepEqual(leftovers, [], "a temporary EROFS mount was left behind");
}

const golden = parseDump(Deno.readTextFileSync(`${ERO}/v0.dump`));

for (const [image, layer] of [["default.cfs", "fd"], ["v0.cfs", "tempdir"], ["default.cfs", "tempdir"]] as const) {
  Deno.test(`mount ${image} (EROFS layer via ${layer}): the golden tree of v0.dump, read through the mount`, async () => {
    requireRoot();
    await using r = await rig();
    const tmpBefore = [...Deno.readDirSync(Deno.env.get("TMPDIR") ?? "/tmp")].filter((e) =>
      e.name.startsWith(".composefs.")
    );
    const res = mountComposefs(r.mnt, insecure(image, r.objects, { erofsLayer: layer }));
    try {
      assert.deepEqual(res, { target: await Deno.realPath(r.mnt), verity: false, erofsLayer: layer });
      const m = mountAt(res.target)!;
      assert.deepEqual([m.fsType, m.source], ["overlay", "composefs"]);
      const opts = m.superOptions.split(",");
      for (const o of ["ro", "metacopy=on", "redirect_dir=on", `datadir+=${await Deno.realPath(r.objects)}`]) {
        assert(opts.includes(o), `${o} not in ${m.superOptions}`);
      }
      assert(!opts.some((o) => o.startsWith("verity")), m.superOptions);
      // The whiteout is visible as an empty file marked for an overlay stacked on top (test-rig.md §4).
      assert.deepEqual(await diffTree(r.mnt, golden, ["/special/whiteout"]), []);
      const wh = Deno.lstatSync(`${r.mnt}/special/whiteout`);
      assert(wh.isFile && wh.size === 0);
      assert(libc.llistxattr(`${r.mnt}/special/whiteout`).includes("trusted.overlay.whiteout"));
      // Read-only.
      assert.throws(() => Deno.writeTextFileSync(`${r.mnt}/new`, "x"), /Read-only file system/);
    } finally {
      unmountComposefs(r.mnt);
    }
    assertNothingMounted(r.mnt);
    const tmpAfter = [...Deno.readDirSync(Deno.env.get("TMPDIR") ?? "/tmp")].filter((e) =>
      e.name.startsWith(".composefs.")
    );
    assert.deepEqual(tmpAfter.map((e) => e.name).sort(), tmpBefore.map((e) => e.name).sort(), "temporary dir left");
  });
}

Deno.test("mount hardlinks.cfs: both names of a hardlink are one inode with nlink 2", async () => {
  requireRoot();
  await using r = await rig();
  mountComposefs(r.mnt, insecure("hardlinks.cfs", r.objects));
  try {
    assert.deepEqual(await diffTree(r.mnt, parseDump(Deno.readTextFileSync(`${ERO}/hardlinks.dump`))), []);
    const seen = await statTree(r.mnt);
    for (const [a, b] of [["/a", "/b"], ["/big", "/big2"]]) {
      assert.equal(seen.get(a)!.ino, seen.get(b)!.ino, `${a} and ${b} are different inodes`);
      assert.equal(seen.get(a)!.nlink, 2);
    }
  } finally {
    unmountComposefs(r.mnt);
  }
  assertNothingMounted(r.mnt);
});

Deno.test("mount: secure mode is refused up front on a kernel without fs-verity", async () => {
  requireRoot();
  await using r = await rig();
  const e = (() => {
    try {
      mountComposefs(r.mnt, { image: `${ERO}/default.cfs`, objectDirs: [r.objects], insecure: false });
    } catch (e) {
      return e;
    }
    assert.fail("a secure mount succeeded without fs-verity");
  })();
  const msg = errorChain(e);
  assert.match(
    msg,
    /^mounting composefs image .*default\.cfs on .*: fs-verity is not supported by this kernel\/filesystem/,
  );
  assert.match(msg, /\(measuring image .*default\.cfs\); use --insecure$/);
  assertNothingMounted(r.mnt);

  // On xfs the verity ioctls are unknown (ENOTTY) rather than unsupported: the same answer.
  await using xfs = await createLoopFs("xfs");
  await Deno.copyFile(`${ERO}/default.cfs`, `${xfs.mountPoint}/img.cfs`);
  assert.throws(
    () => mountComposefs(r.mnt, { image: `${xfs.mountPoint}/img.cfs`, objectDirs: [r.objects], insecure: false }),
    (e: unknown) => /fs-verity is not supported by this kernel\/filesystem .*; use --insecure$/.test(errorChain(e)),
  );
  assertNothingMounted(r.mnt);
});

Deno.test("mount: missing image, object dir, mount point, non-EROFS file and a wrong digest are clear errors", async () => {
  requireRoot();
  await using r = await rig();
  const cases: [Partial<ComposefsMountOptions> & { target?: string }, RegExp][] = [
    [{ image: `${r.path}/nope.cfs` }, /: image .*\/nope\.cfs does not exist$/],
    [{ objectDirs: [`${r.path}/no-objects`] }, /: object directory .*\/no-objects does not exist$/],
    [{ objectDirs: [`${ERO}/v0.dump`] }, /: object directory .*v0\.dump is not a directory$/],
    [{ objectDirs: [] }, /: no object directory given$/],
    [{ target: `${r.path}/no-mnt` }, /: mount point .*\/no-mnt does not exist$/],
    [{ image: `${ERO}/v0.dump` }, /v0\.dump is not an EROFS \(composefs\) image$/],
    [{ image: r.objects }, /: image .*objects is not a regular file$/],
    [{ expectedDigest: "00".repeat(32) }, /v0\.cfs has fs-verity digest 979780e2\w+, expected 0000\w+$/],
  ];
  for (const [o, re] of cases) {
    try {
      mountComposefs(o.target ?? r.mnt, { ...insecure("v0.cfs", r.objects), ...o });
      assert.fail(`mounted with ${JSON.stringify(o)}`);
    } catch (e) {
      assert.match(errorChain(e), re);
    }
    assertNothingMounted(r.mnt);
  }
});

Deno.test("mount: a missing object fails only when that file is opened (ENOENT), as the kernel does", async () => {
  requireRoot();
  const s65 = GOLDEN_OBJECTS.find((o) => o.seed === "s65")!.path;
  await using r = await rig([s65]);
  mountComposefs(r.mnt, insecure("v0.cfs", r.objects));
  try {
    assert.equal(Deno.statSync(`${r.mnt}/files/s65`).size, 65);
    assert.throws(() => Deno.readFileSync(`${r.mnt}/files/s65`), Deno.errors.NotFound);
    assert.equal(Deno.readFileSync(`${r.mnt}/files/s4096`).length, 4096);
  } finally {
    unmountComposefs(r.mnt);
  }
});

Deno.test("mount: several object directories and a writable upper layer", async () => {
  requireRoot();
  const big = GOLDEN_OBJECTS.filter((o) => o.size > 4096).map((o) => o.path);
  await using r = await rig(big);
  // The large objects live in a second object directory.
  const second = `${r.path}/objects2`;
  await writeGoldenObjects(second, GOLDEN_OBJECTS.map((o) => o.path).filter((p) => !big.includes(p)));
  const upperdir = `${r.path}/upper`, workdir = `${r.path}/work`;
  await Deno.mkdir(upperdir);
  await Deno.mkdir(workdir);
  mountComposefs(r.mnt, {
    ...insecure("v0.cfs", r.objects),
    objectDirs: [r.objects, second],
    upper: { upperdir, workdir },
    // C's image digest (vectors/erofs/README.md), checked in userspace here.
    expectedDigest: "979780e29a591b298ab6db5a93d42c1106d7130a6e074719a5a3b05646f20e15",
  });
  try {
    // The root of a writable overlay is the upper directory, with its own mtime.
    assert.deepEqual(await diffTree(r.mnt, golden, ["/special/whiteout", "/"]), []);
    assert(!mountAt(await Deno.realPath(r.mnt))!.superOptions.split(",").includes("ro"));
    await Deno.writeTextFile(`${r.mnt}/files/new.txt`, "new\n");
    await Deno.writeTextFile(`${r.mnt}/files/s65`, "changed\n");
    assert.equal(await Deno.readTextFile(`${r.mnt}/files/s65`), "changed\n");
  } finally {
    unmountComposefs(r.mnt);
  }
  assertNothingMounted(r.mnt);
  assert.equal(await Deno.readTextFile(`${upperdir}/files/new.txt`), "new\n");
  assert.equal(await Deno.readTextFile(`${upperdir}/files/s65`), "changed\n");
  // The object store is untouched by the copy-up.
  const s65 = GOLDEN_OBJECTS.find((o) => o.seed === "s65")!.path;
  assert.equal((await Deno.stat(`${r.objects}/${s65}`)).size, 65);
});

Deno.test("mount: unusable upper/work directories are clear errors", async () => {
  requireRoot();
  await using r = await rig();
  const ro = `${r.path}/ro`;
  for (const d of ["up", "work", "up/nested"]) await Deno.mkdir(`${ro}/${d}`, { recursive: true });
  const cases: [{ upperdir: string; workdir: string }, RegExp][] = [
    [
      { upperdir: `${ro}/up`, workdir: "/dev/shm" },
      /: upper directory .*\/up and work directory \/dev\/shm are on different filesystems$/,
    ],
    [{ upperdir: `${ro}/up`, workdir: `${ro}/up/nested` }, /must be separate, neither inside the other$/],
    [{ upperdir: `${ro}/up`, workdir: `${ro}/up` }, /must be separate, neither inside the other$/],
    // Refused by the kernel, which says why through the fs context.
    [
      { upperdir: `${ro}/up`, workdir: `${ro}/work` },
      /: creating the overlay: fsconfig upperdir=.*\/up: .*\(EINVAL\): e overlay: filesystem on .*\/up is read-only$/,
    ],
  ];
  await run("mount", ["--bind", "-o", "ro", ro, ro]);
  for (const [upper, re] of cases) {
    try {
      mountComposefs(r.mnt, { ...insecure("v0.cfs", r.objects), upper });
      assert.fail(`mounted with ${JSON.stringify(upper)}`);
    } catch (e) {
      assert.match(errorChain(e), re);
    }
    assertNothingMounted(r.mnt);
  }
});

Deno.test("unmount: refuses a path that is not a mount point or not an overlay", async () => {
  requireRoot();
  await using r = await rig();
  assert.throws(() => unmountComposefs(r.mnt), (e: unknown) => /is not a mount point$/.test(errorChain(e)));
  assert.throws(
    () => unmountComposefs("/"),
    (e: unknown) => /^unmounting \/: \/ is a \S+ mount .*, not composefs$/.test(errorChain(e)),
  );
  assert.throws(() => unmountComposefs(`${r.path}/nope`), (e: unknown) => /does not exist$/.test(errorChain(e)));
});

Deno.test("bootcfs mount / umount on the command line", async () => {
  requireRoot();
  await using r = await rig();
  const img = `${ERO}/v0.cfs`;

  let res = await bootcfs(["mount", "--basedir", r.objects, img, r.mnt]);
  assert.equal(res.code, 1, res.stderr);
  assert.match(
    res.stderr,
    /^error: mounting composefs image .*: fs-verity is not supported by this kernel\/filesystem .*; use --insecure\n$/,
  );
  assertNothingMounted(r.mnt);

  res = await bootcfs(["mount", "--insecure", "--basedir", r.objects, img, r.mnt]);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stderr, /without fs-verity/);
  try {
    assert.deepEqual(await diffTree(r.mnt, golden, ["/special/whiteout"]), []);
  } finally {
    res = await bootcfs(["umount", r.mnt]);
    assert.equal(res.code, 0, res.stderr);
  }
  assertNothingMounted(r.mnt);

  // Without --basedir the objects come from the repository.
  await Deno.mkdir(`${r.path}/repo`);
  await Deno.rename(r.objects, `${r.path}/repo/objects`);
  res = await bootcfs(["mount", "--insecure", "--repo", `${r.path}/repo`, "--digest", "ab".repeat(32), img, r.mnt]);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /v0\.cfs has fs-verity digest 979780e2\w+, expected (ab)+\n$/);
  res = await bootcfs(["mount", "--insecure", "--digest", "ab", img, r.mnt]);
  assert.equal(res.code, 2);
  assert.match(res.stderr, /--digest must be 64 \(sha256\) or 128 \(sha512\) hex digits/);
  const digest = "979780e29a591b298ab6db5a93d42c1106d7130a6e074719a5a3b05646f20e15";
  res = await bootcfs(["mount", "--insecure", "--repo", `${r.path}/repo`, "--digest", digest, img, r.mnt]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(Deno.readFileSync(`${r.mnt}/files/s1m1`).length, 1048577);
  assert.equal((await bootcfs(["umount", r.mnt])).code, 0);

  res = await bootcfs(["umount", r.mnt]);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /^error: unmounting .*: .* is not a mount point\n$/);
  // A name that is not a file is looked up among the repository's tags.
  assert.equal((await bootcfs(["repo", "init", "--insecure", `${r.path}/tagged`])).code, 0);
  res = await bootcfs(["mount", "--insecure", "--repo", `${r.path}/tagged`, "some-name", r.mnt]);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /^error: .*no image tagged "some-name"\n$/m);
  res = await bootcfs(["mount", "--insecure", "--upperdir", r.path, img, r.mnt]);
  assert.equal(res.code, 2);
  assert.match(res.stderr, /--upperdir and --workdir go together/);
  assertNothingMounted(r.mnt);
});
