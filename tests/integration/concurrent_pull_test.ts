/**
 * Several bootcfs processes on one repository at once, as on a host where a timer's upgrade meets
 * an operator's pull: two pulls of the same image write the same objects and layer streams side by
 * side, and a `repo gc` started meanwhile waits for them (shared locks) rather than collecting what
 * they have not tagged yet. Afterwards both tags name the image a pull alone gives, the repository
 * holds exactly the objects a pull alone stores, and fsck re-hashes everything clean.
 */
import assert from "node:assert/strict";
import { buildTar, type TarBuildItem } from "../../lib/tar/mod.ts";
import { bootcfs, spawnBootcfs } from "../helpers/cli.ts";
import { scratchDir } from "../helpers/fs.ts";
import { gen, objectNames, randomBytes, writeOciLayout } from "../helpers/oci.ts";

/**
 * Three layers sharing a file (so the pulls race on objects across layers too), ~100 MiB: long
 * enough to import that the gc surely starts while both pulls run.
 */
function layers(): Uint8Array[] {
  const shared = gen(200 << 10, "shared");
  return [0, 1, 2].map((n) => {
    const items: TarBuildItem[] = [{ entry: { path: `l${n}`, kind: "dir" } }];
    for (let i = 0; i < 400; i++) {
      items.push({ entry: { path: `l${n}/small${i}`, kind: "file" }, data: gen(100 + i, `s${n}-${i}`) });
    }
    for (let i = 0; i < 32; i++) {
      items.push({ entry: { path: `l${n}/big${i}`, kind: "file" }, data: randomBytes(1 << 20) });
    }
    items.push({ entry: { path: `l${n}/shared`, kind: "file" }, data: shared });
    return buildTar(items);
  });
}

/** A child's exit code and output; `onMarker` is called once stderr shows `marker`. */
async function collect(
  child: Deno.ChildProcess,
  marker?: string,
  onMarker?: () => void,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const dec = new TextDecoder();
  const stdout = new Response(child.stdout).text();
  let stderr = "";
  for await (const c of child.stderr) {
    stderr += dec.decode(c, { stream: true });
    if (marker && stderr.includes(marker)) onMarker?.();
  }
  onMarker?.();
  return { code: (await child.status).code, stdout: await stdout, stderr };
}

Deno.test("concurrent: two pulls of one image and a gc at once; both tagged, nothing collected early, fsck clean", async () => {
  await using dir = await scratchDir();
  const ref = `oci:${dir.path}/layout:v1`;
  await writeOciLayout(`${dir.path}/layout`, {
    layers: layers().map((tar) => ({ tar, compression: "none" as const })),
    tag: "v1",
  });
  const repo = `${dir.path}/repo`;
  const alone = `${dir.path}/alone`;
  for (const r of [repo, alone]) {
    const init = await bootcfs(["--repo", r, "--insecure", "repo", "init", "--hash", "sha512"]);
    assert.equal(init.code, 0, init.stderr);
  }
  const single = await bootcfs(["--repo", alone, "--insecure", "oci", "pull", ref, "--name", "a", "--json"]);
  assert.equal(single.code, 0, single.stderr);
  const imageId = JSON.parse(single.stdout).imageId;

  const pull = (name: string) =>
    spawnBootcfs(["--repo", repo, "--insecure", "--progress", "json", "oci", "pull", ref, "--name", name, "--json"]);
  const a = pull("a");
  const b = pull("b");
  // gc once a layer import is under way in the first pull: it must wait for both.
  const aStarted = Promise.withResolvers<void>();
  const ra = collect(a, "progress.start", aStarted.resolve);
  const rb = collect(b);
  await aStarted.promise;
  const rgc = await collect(spawnBootcfs(["--repo", repo, "--insecure", "repo", "gc", "--json"]));
  const [pa, pb] = await Promise.all([ra, rb]);
  assert.equal(pa.code, 0, pa.stderr);
  assert.equal(pb.code, 0, pb.stderr);
  assert.equal(rgc.code, 0, rgc.stderr);
  assert.match(rgc.stderr, /waiting for other users/, "gc ran while the pulls did");
  assert.equal(JSON.parse(pa.stdout).imageId, imageId);
  assert.equal(JSON.parse(pb.stdout).imageId, imageId);
  assert.equal(JSON.parse(rgc.stdout).objectsRemoved, 0, rgc.stdout);

  const images = await bootcfs(["--repo", repo, "oci", "images", "--json"]);
  assert.equal(images.code, 0, images.stderr);
  const list = JSON.parse(images.stdout) as { name: string; imageId: string }[];
  assert.deepEqual(list.map((i) => [i.name, i.imageId]).sort(), [["a", imageId], ["b", imageId]]);
  assert.deepEqual(objectNames(repo), objectNames(alone));
  const fsck = await bootcfs(["--repo", repo, "repo", "fsck", "--json"]);
  assert.equal(fsck.code, 0, fsck.stdout);
});
