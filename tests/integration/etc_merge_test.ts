/**
 * The /etc three-way merge (bootc-layout.md §3.16) on real directories built with coreutils and
 * `attr` (owners, setuid, user.* and trusted.* xattrs, symlinks in and out of the tree, FIFOs,
 * files larger than one read), checked with GNU find, getfattr, sha256sum, stat and readlink.
 */
import assert from "node:assert/strict";
import { requireRoot, run, scratchDir } from "../helpers/fs.ts";
import { diffEtc, EtcMergeConflictError, mergeEtc } from "../../lib/deploy/etc_merge.ts";
import { errorChain } from "../../lib/error/mod.ts";

/**
 * Every entry below `root` as one line of what the merge must carry: type, mode, owner, symlink
 * target (find), xattrs (getfattr, symlinks not followed), content digest (sha256sum). No mtime.
 */
async function snapshot(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const listing = await run("find", [root, "-mindepth", "1", "-printf", "%P\\t%y %#m %U:%G -> %l\\n"]);
  for (const line of listing.split("\n").filter((l) => l !== "")) {
    const [rel, desc] = line.split("\t");
    out.set(rel, desc);
  }
  const relOf = (path: string) => path.slice(root.length + 1);
  const dump = await run("getfattr", ["-R", "-P", "-h", "-d", "-m", "-", "-e", "hex", "--absolute-names", root]);
  for (const block of dump.split("\n\n").filter((b) => b.trim() !== "")) {
    const [head, ...attrs] = block.trim().split("\n");
    const rel = relOf(head.replace(/^# file: /, ""));
    if (rel !== "") out.set(rel, `${out.get(rel)} xattrs ${attrs.sort().join(",")}`);
  }
  const sums = await run("find", [root, "-type", "f", "-exec", "sha256sum", "{}", "+"]);
  for (const line of sums.split("\n").filter((l) => l !== "")) {
    const [hash, path] = line.split(/ {2}/);
    out.set(relOf(path), `${out.get(relOf(path))} sha256 ${hash}`);
  }
  return out;
}

async function sh(cwd: string, script: string): Promise<void> {
  await run("bash", ["-euc", script], { cwd });
}

// p = the booted image's /etc, c = the running /etc, n = the new image's etc; `outside` is what
// symlinks point to and must never be touched.
const SCENARIO = `
mkdir p c n outside
echo secret > outside/secret
echo "outside victim" > outside/victim

cd p
echo "hosts v1" > hosts
for f in untouched modified deleted perm xattr; do echo "$f v1" > $f.conf; done
ln -s untouched.conf link
echo "typechg v1" > typechg
mkdir dir.d; printf a > dir.d/a.conf
mkdir -p olddir/sub; printf x > olddir/x; printf y > olddir/sub/y
mkdir gone.d; printf k > gone.d/kept.conf; printf o > gone.d/other
mkdir gone2.d; printf f > gone2.d/f
mkdir sub; printf v > sub/victim
ln -s ../outside oldlink
head -c 3145728 /dev/zero > big.bin; cp big.bin big-same.bin
cd ..

cp -a p/. c/
cd c
touch -d 2001-01-01 hosts untouched.conf dir.d/a.conf
echo "modified v1 + local" > modified.conf
rm deleted.conf oldlink sub/victim; rm -r olddir
chmod 0600 perm.conf
setfattr -n user.local -v 1 xattr.conf
ln -sfn modified.conf link
rm typechg; ln -s /etc/hosts typechg
chmod 0700 dir.d; setfattr -n user.dir -v mine dir.d
chown 1000:1000 gone.d; chmod 0710 gone.d; printf "k local" > gone.d/kept.conf
printf X | dd of=big.bin bs=1 seek=3145727 conv=notrunc status=none
mkdir -m 0750 added.d; chown 1000:1001 added.d
setfattr -n user.a -v 1 added.d; setfattr -n trusted.t -v 2 added.d
printf c > added.d/conf; chown 1000:1000 added.d/conf; chmod 0640 added.d/conf; setfattr -n user.f -v x added.d/conf
printf '#!/bin/sh\\n' > added.d/suid; chown 1000:0 added.d/suid; chmod 4755 added.d/suid
mkdir added.d/sub; printf d > added.d/sub/deep
ln -s /nonexistent/absolute added.d/link; chown -h 1000:1000 added.d/link; setfattr -h -n trusted.l -v 3 added.d/link
ln -s "$PWD/../outside" escape
mkfifo fifo added.d/fifo
cd ..

cd n
echo "hosts v2" > hosts
for f in untouched modified deleted perm xattr; do echo "$f v2" > $f.conf; done
ln -s untouched.conf link
echo "typechg v2" > typechg
mkdir dir.d; printf a > dir.d/a.conf; printf n > dir.d/new-default; setfattr -n user.stale -v old dir.d
mkdir olddir; printf x2 > olddir/x
ln -s "$PWD/../outside" sub
ln -s ../outside oldlink
printf n > newonly.conf
head -c 3145728 /dev/urandom > big.bin; head -c 3145728 /dev/urandom > big-same.bin
cd ..
cp -a n norig
`;

Deno.test("etc merge: local changes win, untouched files take the new defaults, deletions propagate", async () => {
  requireRoot();
  await using dir = await scratchDir("bootcfs-etc-merge-");
  const root = dir.path;
  await sh(root, SCENARIO);
  const [p, c, n] = [`${root}/p`, `${root}/c`, `${root}/n`];
  const before = {
    current: await snapshot(c),
    newEtc: await snapshot(`${root}/norig`),
    outside: await snapshot(`${root}/outside`),
  };

  const expectedDiff = {
    added: ["added.d", "added.d/conf", "added.d/link", "added.d/sub", "added.d/sub/deep", "added.d/suid", "escape"],
    modified: [
      "big.bin",
      "dir.d",
      "gone.d",
      "gone.d/kept.conf",
      "link",
      "modified.conf",
      "perm.conf",
      "typechg",
      "xattr.conf",
    ],
    removed: ["deleted.conf", "olddir", "oldlink", "sub/victim"],
  };
  assert.deepEqual(diffEtc(p, c, n), { diff: expectedDiff, conflicts: [] });
  assert.deepEqual(mergeEtc(p, c, n), expectedDiff);

  // What each path of the merged etc must look like, and where it comes from; anything else
  // (the FIFOs, what was deleted locally, gone.d/other and gone2.d that the new image dropped)
  // must be absent.
  const fromCurrent = [...expectedDiff.added, ...expectedDiff.modified];
  const fromNew = [
    "big-same.bin",
    "dir.d/a.conf",
    "dir.d/new-default",
    "hosts",
    "newonly.conf",
    "sub",
    "untouched.conf",
  ];
  const expected = new Map<string, string>();
  for (const path of fromCurrent) expected.set(path, before.current.get(path)!);
  for (const path of fromNew) expected.set(path, before.newEtc.get(path)!);
  for (const [path, desc] of expected) assert(desc !== undefined, `${path} missing from the scenario`);
  const after = await snapshot(n);
  assert.deepEqual(new Map([...after].sort()), new Map([...expected].sort()));
  assert.deepEqual(await snapshot(`${root}/outside`), before.outside);

  // A few of the above spelled out with other tools, as the scenario set them.
  assert.equal((await run("stat", ["-c", "%a %u %g", `${n}/added.d/suid`])).trim(), "4755 1000 0");
  assert.equal((await run("stat", ["-c", "%a %u %g", `${n}/added.d`])).trim(), "750 1000 1001");
  assert.equal((await run("stat", ["-c", "%a %u %g", `${n}/gone.d`])).trim(), "710 1000 1000");
  assert.equal((await run("readlink", [`${n}/added.d/link`])).trim(), "/nonexistent/absolute");
  assert.equal((await run("stat", ["-c", "%u %g", `${n}/added.d/link`])).trim(), "1000 1000");
  const linkAttr = await run("getfattr", ["-h", "--only-values", "-n", "trusted.l", `${n}/added.d/link`]);
  assert.equal(linkAttr, "3");
  const dirAttrs = await run("getfattr", ["-h", "-d", "-m", "-", "--absolute-names", `${n}/dir.d`]);
  assert.match(dirAttrs, /user\.dir="mine"/);
  assert.doesNotMatch(dirAttrs, /user\.stale/);
  await run("cmp", [`${c}/modified.conf`, `${n}/modified.conf`]);
  await run("cmp", [`${c}/big.bin`, `${n}/big.bin`]);
  await run("cmp", [`${root}/norig/big-same.bin`, `${n}/big-same.bin`]);
  assert.equal(await run("cat", [`${root}/outside/victim`]), "outside victim\n");
  assert.equal(await run("find", [n, "-type", "p"]), "");
});

Deno.test("etc merge: a file/directory type conflict fails before anything is written", async () => {
  requireRoot();
  await using dir = await scratchDir("bootcfs-etc-merge-");
  const root = dir.path;
  await sh(
    root,
    `mkdir p c n
    mkdir p/x.d; printf f > p/x.d/f; printf y > p/y.conf; printf z > p/z.conf
    cp -a p/. c/
    printf f2 > c/x.d/f; printf y2 > c/y.conf; printf z2 > c/z.conf
    printf "x.d is a file" > n/x.d; mkdir -p n/y.conf/inner; printf z3 > n/z.conf`,
  );
  const [p, c, n] = [`${root}/p`, `${root}/c`, `${root}/n`];
  const conflicts = [
    { path: "x.d", reason: "Directory 'x.d' now defaults to a file in new etc" },
    { path: "y.conf", reason: "File 'y.conf' now defaults to a directory in new etc" },
  ];
  assert.deepEqual(diffEtc(p, c, n).conflicts, conflicts);
  const before = await snapshot(n);
  assert.throws(() => mergeEtc(p, c, n), (e) => {
    assert(e instanceof EtcMergeConflictError);
    assert.deepEqual(e.conflicts, conflicts);
    assert.equal(e.message, `Merge conflicts found in etc: ${conflicts.map((x) => x.reason).join("; ")}`);
    return true;
  });
  assert.deepEqual(await snapshot(n), before);
});

Deno.test("etc merge: a failed write names the path and the operation", async () => {
  requireRoot();
  await using dir = await scratchDir("bootcfs-etc-merge-");
  const root = dir.path;
  await sh(root, "mkdir p c n; echo v1 > p/a.conf; echo local > c/a.conf; echo v2 > n/a.conf; chattr +i n/a.conf");
  try {
    assert.throws(() => mergeEtc(`${root}/p`, `${root}/c`, `${root}/n`), (e) => {
      assert.match(errorChain(e), new RegExp(`^merging a\\.conf into ${root}/n: .*Operation not permitted`));
      return true;
    });
  } finally {
    await run("chattr", ["-i", `${root}/n/a.conf`]);
  }
});
