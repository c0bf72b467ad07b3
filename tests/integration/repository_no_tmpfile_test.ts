/**
 * A repository on a filesystem without O_TMPFILE (fuse-overlayfs answers EOPNOTSUPP) falls back to
 * named `objects/.tmp-object-*` staging files, says so in verbose output, and stores exactly the
 * objects an O_TMPFILE filesystem would.
 */
import assert from "node:assert/strict";
import { writeSampleImage } from "../../scripts/fixtures/sample_image.ts";
import { bootcfs, run } from "../helpers/cli.ts";
import { requireRoot, scratchDir } from "../helpers/fs.ts";

/** Every object of a repository as `xx/rest` names, sorted. */
function objectNames(repo: string): string[] {
  const out: string[] = [];
  for (const d of Deno.readDirSync(`${repo}/objects`)) {
    if (!d.isDirectory) continue;
    for (const f of Deno.readDirSync(`${repo}/objects/${d.name}`)) out.push(`${d.name}/${f.name}`);
  }
  return out.sort();
}

Deno.test("repository without O_TMPFILE: named staging files, same objects", async () => {
  requireRoot();
  await using s = await scratchDir();
  const fuse = `${s.path}/fuse`;
  for (const d of ["lower", "upper", "work", "mnt"]) Deno.mkdirSync(`${fuse}/${d}`, { recursive: true });
  await run("fuse-overlayfs", [
    "-o",
    `lowerdir=${fuse}/lower,upperdir=${fuse}/upper,workdir=${fuse}/work`,
    `${fuse}/mnt`,
  ]);
  try {
    const layout = `${s.path}/oci`;
    await writeSampleImage(layout, "1");
    const pullInto = async (repo: string) => {
      for (
        const args of [["repo", "init", "--insecure", repo], ["-v", "--repo", repo, "oci", "pull", `oci:${layout}:1`]]
      ) {
        const r = await bootcfs(["--progress", "none", ...args]);
        assert.equal(r.code, 0, r.stderr);
        if (args[0] === "-v") return r.stderr;
      }
      return "";
    };
    const fuseRepo = `${fuse}/mnt/repo`;
    const log = await pullInto(fuseRepo);
    assert.match(log, /has no O_TMPFILE; using named temporary files/);
    const plainRepo = `${s.path}/repo`;
    assert.doesNotMatch(await pullInto(plainRepo), /O_TMPFILE/);

    const names = objectNames(fuseRepo);
    assert.deepEqual(names, objectNames(plainRepo));
    assert.ok(names.length > 40);
    assert.ok(!names.some((n) => n.includes(".tmp-object-")), "no staging file left behind");
    // Object names are the content's fs-verity digests, checked with the reference tool.
    for (const n of names.slice(0, 10)) {
      const line = await run("fsverity", ["digest", "--hash-alg=sha512", `${fuseRepo}/objects/${n}`]);
      assert.equal(line.split(" ")[0], `sha512:${n.replace("/", "")}`);
    }
    const fsck = await bootcfs(["--repo", fuseRepo, "repo", "fsck"]);
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
  } finally {
    await run("umount", [`${fuse}/mnt`]);
  }
});
