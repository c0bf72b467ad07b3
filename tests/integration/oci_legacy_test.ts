/**
 * A repository from before composefs-rs 0.7 (no meta.json, V2 images) is brought up to date by
 * the next pull, in place, keeping its image ids; a second pull changes nothing more.
 */
import assert from "node:assert/strict";
import { writeSampleImage } from "../../scripts/fixtures/sample_image.ts";
import { bootcfs } from "../helpers/cli.ts";

Deno.test("legacy repository: the pull writes meta.json and keeps the V2 image ids", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const layout = `${dir}/oci`;
    await writeSampleImage(layout, "1");
    const repo = `${dir}/repo`;
    const ok = async (args: string[]) => {
      const r = await bootcfs(["--repo", repo, "--progress", "none", ...args]);
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
      return r.stdout;
    };
    const pullSample = () =>
      bootcfs(["--repo", repo, "--progress", "none", "oci", "pull", `oci:${layout}:1`, "--name", "os"]);
    await ok(["repo", "init", "--insecure", "--hash", "sha256", "--erofs-format", "2"]);
    await ok(["oci", "pull", `oci:${layout}:1`, "--name", "os"]);
    const [before] = JSON.parse(await ok(["oci", "images", "--json"]));
    const objectsBefore = [...Deno.readDirSync(`${repo}/objects`)].length;

    // What a pre-0.7 repository looks like: the same tree without meta.json.
    Deno.removeSync(`${repo}/meta.json`);
    const refused = await bootcfs(["--repo", repo, "oci", "images"]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /before 0\.7 \(no meta\.json\)/);

    const pulled = await pullSample();
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.match(pulled.stderr, /wrote meta\.json for a repository from before composefs-rs 0\.7 \(sha256, EROFS V2\)/);
    const meta = JSON.parse(Deno.readTextFileSync(`${repo}/meta.json`));
    assert.deepEqual(meta.erofs_formats, { default: 2 });
    const [after] = JSON.parse(await ok(["oci", "images", "--json"]));
    assert.equal(after.imageId, before.imageId);
    assert.equal(after.imageId.length, 64);
    assert.equal([...Deno.readDirSync(`${repo}/objects`)].length, objectsBefore);

    // Idempotent: nothing more to do on the next pull.
    const again = await pullSample();
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /wrote meta\.json/);
    assert.match(await ok(["repo", "fsck"]), /no problems/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
