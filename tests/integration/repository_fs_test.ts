/**
 * The repository on real filesystems (loop-mounted xfs with reflinks, ext4 without) and through
 * the CLI: import methods, cross-filesystem fallback, secure-mode refusal, fsck/gc exit codes.
 * This kernel has no fs-verity, so secure repositories cannot be created (test-rig.md §1).
 */
import assert from "node:assert/strict";
import { bootcfs } from "../helpers/cli.ts";
import { createLoopFs, requireRoot, run } from "../helpers/fs.ts";
import { gen } from "../helpers/oci.ts";
import { Repository } from "../../lib/repository/mod.ts";

function init(path: string): Repository {
  return Repository.init(path, { alg: "sha512", formats: { default: 1, extra: [] }, insecure: true }).repo;
}

async function digest(path: string): Promise<string> {
  return (await run("fsverity", ["digest", "--hash-alg=sha512", "--block-size=4096", path])).split(" ")[0].slice(7);
}

Deno.test("import from files: reflink on xfs, hardlink on ext4, copy across filesystems", async () => {
  requireRoot();
  await using xfs = await createLoopFs("xfs");
  await using ext4 = await createLoopFs("ext4");
  const data = gen(3 << 20, "import");
  for (const fs of [xfs, ext4]) Deno.writeFileSync(`${fs.mountPoint}/src`, data);
  const logs: string[] = [];

  const onXfs = Repository.init(`${xfs.mountPoint}/repo`, {
    alg: "sha512",
    formats: { default: 1, extra: [] },
    insecure: true,
    log: (m) => logs.push(m),
  }).repo;
  const a = onXfs.ensureObjectFromFile(`${xfs.mountPoint}/src`);
  assert.equal(a.method, "reflinked");
  assert.equal(a.id, await digest(`${xfs.mountPoint}/src`));
  onXfs.sync();
  assert.equal(await digest(onXfs.objectPath(a.id)), a.id);
  assert.match(await run("filefrag", ["-v", onXfs.objectPath(a.id)]), /shared/);
  assert.equal(Deno.statSync(`${xfs.mountPoint}/src`).nlink, 1);
  onXfs.close();

  using onExt4 = init(`${ext4.mountPoint}/repo`);
  const b = onExt4.ensureObjectFromFile(`${ext4.mountPoint}/src`);
  assert.equal(b.method, "hardlinked");
  assert.equal(b.id, a.id);
  assert.equal(Deno.statSync(`${ext4.mountPoint}/src`).nlink, 2);
  assert.equal(onExt4.ensureObjectFromFile(`${ext4.mountPoint}/src`).method, "present");

  // xfs → ext4: no reflink (EXDEV), no hardlink (EXDEV): copied, and the fallback is remembered.
  Deno.writeFileSync(`${xfs.mountPoint}/other`, gen(100_000, "other"));
  const logs2: string[] = [];
  const cross = Repository.open(`${ext4.mountPoint}/repo`, { log: (m) => logs2.push(m) });
  const c = cross.ensureObjectFromFile(`${xfs.mountPoint}/other`);
  assert.equal(c.method, "copied");
  assert.equal(c.id, await digest(`${xfs.mountPoint}/other`));
  cross.sync();
  assert.equal(await digest(cross.objectPath(c.id)), c.id);
  assert.match(logs2.join("\n"), /no reflinks.*\n.*no hardlinks/);
  cross.close();
  assert.match(logs.join("\n"), /insecure/);
});

Deno.test("CLI: repo init/fsck/gc on an ext4 repository, exit codes and messages", async () => {
  requireRoot();
  await using ext4 = await createLoopFs("ext4");
  const repo = `${ext4.mountPoint}/composefs`;
  const secure = await bootcfs(["repo", "init", repo]);
  assert.equal(secure.code, 1);
  assert.match(secure.stderr, /no fs-verity; use --insecure/);

  // Without DIR or --repo the repository is ROOT/sysroot/composefs.
  Deno.mkdirSync(`${ext4.mountPoint}/target/sysroot`, { recursive: true });
  const byRoot = await bootcfs(["--root", `${ext4.mountPoint}/target`, "repo", "init", "--insecure"]);
  assert.equal(byRoot.code, 0, byRoot.stderr);
  assert.ok(Deno.statSync(`${ext4.mountPoint}/target/sysroot/composefs/meta.json`).isFile);

  const ok = await bootcfs(["repo", "init", "--insecure", "--hash", "sha256", "--erofs-format", "1,2", repo]);
  assert.equal(ok.code, 0, ok.stderr);
  const meta = JSON.parse(Deno.readTextFileSync(`${repo}/meta.json`));
  assert.deepEqual(meta.erofs_formats, { default: 1, extra: [2] });
  assert.equal(meta.algorithm, "fsverity-sha256-12");
  assert.equal((await bootcfs(["repo", "init", "--insecure", repo])).code, 1); // sha512 ≠ existing sha256

  const r = Repository.open(repo);
  const w = r.createStreamWriter(0n);
  const ext = r.writeExternal(w, gen(1000, "ext"));
  r.writeStream(w, "s", "keep");
  r.ensureObject(gen(2000, "garbage"));
  r.close();

  const verbose = await bootcfs(["-v", "--repo", repo, "repo", "fsck"]);
  assert.equal(verbose.code, 0, verbose.stderr);
  assert.match(verbose.stderr, /insecure/);
  assert.match(verbose.stdout, /checked 3 objects, 1 streams, 0 images, 1 refs: no problems/);

  const dry = await bootcfs(["--repo", repo, "repo", "gc", "--dry-run"]);
  assert.match(dry.stdout, /would remove 1 objects \(2\.0 KiB\), 0 images, 0 streams; 2 objects live/);
  const done = await bootcfs(["--repo", repo, "repo", "gc", "--json"]);
  assert.equal(JSON.parse(done.stdout).objectsRemoved, 1);

  Deno.writeFileSync(`${repo}/objects/${ext.slice(0, 2)}/${ext.slice(2)}`, gen(1000, "tampered"));
  const bad = await bootcfs(["--repo", repo, "repo", "fsck"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, new RegExp(`objects/${ext.slice(0, 2)}/${ext.slice(2)}: content does not match`));
  const fixed = await bootcfs(["--repo", repo, "repo", "fsck", "--repair"]);
  assert.equal(fixed.code, 1);
  assert.match(fixed.stdout, /\(removed\)/);
  assert.equal((await bootcfs(["--repo", repo, "repo", "fsck"])).code, 0);

  // GC refuses to wait with --no-wait while another process uses the repository.
  const holder = new Deno.Command("flock", { args: ["-s", repo, "sleep", "3"] }).spawn();
  try {
    await new Promise((res) => setTimeout(res, 200));
    const busy = await bootcfs(["--repo", repo, "repo", "gc", "--no-wait"]);
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, /in use by another process/);
  } finally {
    holder.kill();
    await holder.status;
  }
});
