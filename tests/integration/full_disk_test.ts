/**
 * A pull that runs out of space, on a real (small) ext4 loop mount: the user gets one clear error
 * line and a non-zero exit, nothing is tagged, the image pulled before stays whole (`repo fsck`
 * re-hashes every object; inspect), `repo gc` takes back what the failed pull stored, and once
 * there is room the same pull succeeds. Space runs out once for blocks (large files, two layers
 * imported on two threads) and once for inodes (many small files, in a worker).
 */
import assert from "node:assert/strict";
import { buildTar, type TarBuildItem } from "../../lib/tar/mod.ts";
import { bootcfs, type CliResult } from "../helpers/cli.ts";
import { createLoopFs, run, scratchDir } from "../helpers/fs.ts";
import { gen, objectNames, randomBytes, writeOciLayout } from "../helpers/oci.ts";

const dir = (path: string): TarBuildItem => ({ entry: { path, kind: "dir", mtime: 1700000000 } });
const file = (path: string, data: Uint8Array): TarBuildItem => ({
  entry: { path, kind: "file", mtime: 1700000000 },
  data,
});

/** A small image that must survive whatever fails after it. */
function smallImage(): Uint8Array {
  return buildTar([dir("etc"), file("etc/os-release", gen(300, "os-release")), file("etc/hostname", gen(20, "h"))]);
}

/** What is left on the filesystem at `path`: bytes and inodes (after a sync, so the counts are settled). */
async function available(path: string): Promise<{ bytes: number; inodes: number }> {
  await run("sync", ["-f", path]);
  const [bytes, inodes] = (await run("df", ["-B1", "--output=avail,iavail", path])).split("\n")[1].trim().split(/\s+/);
  return { bytes: Number(bytes), inodes: Number(inodes) };
}

/** Exit code 1 and exactly one line for the user: `error: …` naming a layer and the cause. */
function assertOneClearError(r: CliResult): void {
  assert.equal(r.code, 1, r.stderr);
  const errors = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0], /layer sha256:[0-9a-f]{64}: .*No space left on device/);
  assert.doesNotMatch(errors[0], /An error was suppressed/);
  assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace for the user");
}

/**
 * Pulls a small image into a repository on `mnt`, lets `fill` take most of the space (it returns
 * how to give it back), pulls the layers `big` (uncompressed) and expects the disk-full error;
 * checks that nothing was lost or left behind, gives the space back and pulls again.
 */
async function pullIntoFullDisk(
  mnt: string,
  tmp: string,
  big: TarBuildItem[][],
  fill: (free: { bytes: number; inodes: number }) => Promise<() => Promise<void>>,
): Promise<void> {
  const repo = `${mnt}/repo`;
  const cli = (...args: string[]) => bootcfs(["--repo", repo, "--insecure", ...args]);
  assert.equal((await cli("repo", "init", "--hash", "sha512")).code, 0);
  await writeOciLayout(`${tmp}/small`, { layers: [{ tar: smallImage(), compression: "gzip" }], tag: "v1" });
  await writeOciLayout(`${tmp}/big`, {
    layers: big.map((items) => ({ tar: buildTar(items), compression: "none" as const })),
    tag: "v1",
  });
  const first = await cli("oci", "pull", `oci:${tmp}/small:v1`, "--name", "small", "--json");
  assert.equal(first.code, 0, first.stderr);
  const smallId = JSON.parse(first.stdout).imageId;

  const unfill = await fill(await available(mnt));
  const before = await available(mnt);
  const objectsBefore = objectNames(repo).length;

  assertOneClearError(await cli("oci", "pull", `oci:${tmp}/big:v1`, "--name", "big"));

  const images = await cli("oci", "images", "--json");
  assert.equal(images.code, 0, images.stderr);
  assert.deepEqual(JSON.parse(images.stdout).map((i: { name: string }) => i.name), ["small"]);
  const fsck = await cli("repo", "fsck", "--json");
  assert.equal(fsck.code, 0, fsck.stdout);
  const inspect = await cli("oci", "inspect", "small");
  assert.equal(inspect.code, 0, inspect.stderr);
  assert.equal(JSON.parse(inspect.stdout).composefs_erofs, smallId);

  // What the failed pull stored (the objects it could name) is garbage: gc takes it, and only it, back.
  const left = objectNames(repo).length - objectsBefore;
  const gc = await cli("repo", "gc", "--json");
  assert.equal(gc.code, 0, gc.stderr);
  assert.equal(JSON.parse(gc.stdout).objectsRemoved, left, gc.stdout);
  assert.equal(objectNames(repo).length, objectsBefore);
  const after = await available(mnt);
  // Only the object fan-out directories the failed pull made stay (at most 256, 4 KiB each).
  assert.ok(
    before.bytes - after.bytes <= 256 * 4096,
    `free bytes before the failed pull ${before.bytes}, after gc ${after.bytes}`,
  );
  assert.ok(before.inodes - after.inodes <= 256, `free inodes before ${before.inodes}, after gc ${after.inodes}`);
  assert.equal((await cli("repo", "fsck", "--json")).code, 0);

  await unfill();
  const again = await cli("oci", "pull", `oci:${tmp}/big:v1`, "--name", "big");
  assert.equal(again.code, 0, again.stderr);
  const both = await cli("oci", "images", "--json");
  assert.deepEqual(JSON.parse(both.stdout).map((i: { name: string }) => i.name).sort(), ["big", "small"]);
  const final = await cli("repo", "fsck", "--json");
  assert.equal(final.code, 0, final.stdout);
}

Deno.test("full disk: large files on two threads run out of blocks; nothing lost, gc frees it all, retry works", async () => {
  await using fs = await createLoopFs("ext4", { sizeMiB: 128 });
  await using tmp = await scratchDir();
  // Two layers of 24 MiB (one imported by a worker), and 20 MiB left for them.
  const layer = (n: number) => [dir(`l${n}`), ...[0, 1, 2].map((i) => file(`l${n}/f${i}`, randomBytes(8 << 20)))];
  await pullIntoFullDisk(fs.mountPoint, tmp.path, [layer(1), layer(2)], async (free) => {
    const filler = `${fs.mountPoint}/filler`;
    await run("fallocate", ["-l", String(free.bytes - (20 << 20)), filler]);
    return () => Deno.remove(filler);
  });
});

Deno.test("full disk: many small files, imported by a worker, run out of inodes; nothing lost, retry works", async () => {
  await using fs = await createLoopFs("ext4", { sizeMiB: 64, inodes: 4096 });
  await using tmp = await scratchDir();
  // The largest layer (20 MiB, one object: the same file 200 times) goes to the calling thread
  // and fits; the other, 1500 small files, to a worker, which runs out of inodes — and whose
  // repository, closing, fails too (no inode for an object directory): both errors must reach
  // the user, not the worker's "An error was suppressed during disposal".
  const same = gen(100 << 10, "same");
  const large = [dir("large"), ...Array.from({ length: 200 }, (_, i) => file(`large/f${i}`, same))];
  const small = [dir("small"), ...Array.from({ length: 1500 }, (_, i) => file(`small/f${i}`, gen(100, `f${i}`)))];
  await pullIntoFullDisk(fs.mountPoint, tmp.path, [large, small], async (free) => {
    // Empty files hold inodes and no blocks: 1000 inodes left for 1500 objects.
    const filler = `${fs.mountPoint}/filler`;
    await Deno.mkdir(filler);
    for (let i = 0; i < free.inodes - 1000; i++) (await Deno.create(`${filler}/${i}`)).close();
    return () => Deno.remove(filler, { recursive: true });
  });
});
