/**
 * `delete-deployment` and `internals composefs-gc` on a booted deployment (bootc-layout.md §3.11,
 * §3.12): a staged deployment deleted, a rollback deleted while it is queued to boot next, the
 * booted one and unknown ids refused; GC's dry run, `--assert-no-op`, the kernel-only pass
 * without `--prune-repo`, and a deployment whose origin predates manifest digests.
 */
import assert from "node:assert/strict";
import { bootcfs } from "../helpers/cli.ts";
import { requireRoot, scratchDir } from "../helpers/fs.ts";
import { bootDeployment } from "../helpers/booted.ts";
import { f, osImage, osLayer } from "../helpers/os_image.ts";
import { gen } from "../helpers/oci.ts";

async function ok(args: string[]): Promise<string> {
  const r = await bootcfs(["--progress", "none", ...args]);
  assert.equal(r.code, 0, `bootcfs ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

async function fails(args: string[], message: RegExp): Promise<void> {
  const r = await bootcfs(["--progress", "none", ...args]);
  assert.equal(r.code, 1, `bootcfs ${args.join(" ")}: ${r.stdout}`);
  assert.match(r.stderr, message);
}

const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();
const gone = (path: string) => assert.throws(() => Deno.lstatSync(path), Deno.errors.NotFound, path);

Deno.test("delete-deployment: staged, queued rollback, refusals; composefs-gc dry run, assert-no-op, prune", async () => {
  requireRoot();
  await using scratch = await scratchDir();
  const physical = `${scratch.path}/disk`;
  const root = `${scratch.path}/root`;
  const repo = `${physical}/composefs`;
  Deno.mkdirSync(physical);
  const imageA = await osImage(`${scratch.path}/a`, osLayer());
  const imageB = await osImage(
    `${scratch.path}/b`,
    osLayer({ version: "43", kernel: gen(150_000, "kernel-B"), extra: [f("etc/motd", "B\n")] }),
  );
  const imageC = await osImage(`${scratch.path}/c`, osLayer({ version: "44", extra: [f("etc/motd", "C\n")] }));
  const idA: string = JSON.parse(
    await ok(["install", "to-filesystem", "--source-imgref", imageA, "--root-mount-spec=", "--json", physical]),
  ).deployment;
  let booted = await bootDeployment(physical, idA, root);
  const gc = (...flags: string[]) =>
    bootcfs(["--progress", "none", "--root", root, "internals", "composefs-gc", ...flags]);

  // A fresh install has no kernel to collect; in the repository, only the config and manifest
  // splitstreams that naming the boot image replaced.
  let r = await gc("--assert-no-op");
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.stdout, "Dry run (no files deleted)\nObjects: 0 removed (0 bytes)\n");
  r = await gc("--dry-run", "--prune-repo");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Objects: 2 removed \(\d+ bytes\)$/m);

  const idB: string = JSON.parse(await ok(["--root", root, "switch", imageB, "--json"])).deployment;
  await ok(["--root", root, "composefs-finalize-staged"]);
  await booted[Symbol.asyncDispose]();
  booted = await bootDeployment(physical, idB, root);
  const idC: string = JSON.parse(await ok(["--root", root, "switch", imageC, "--json"])).deployment;
  const loader = `${physical}/boot/loader`;
  const tagsBefore = JSON.parse(await ok(["--repo", repo, "oci", "images", "--json"]));
  assert.equal(tagsBefore.length, 3);

  await fails(["--root", root, "delete-deployment", idB], /Cannot delete currently booted deployment/);
  await fails(["--root", root, "delete-deployment", "f".repeat(128)], /Deployment f{128} not found/);

  // The staged deployment: menu, marker, state, tag and boot image go; C shares A's kernel, which stays.
  const delC = JSON.parse(await ok(["--root", root, "delete-deployment", idC, "--json"]));
  assert.equal(delC.slot, "staged");
  assert.equal(delC.entry, `${root}/sysroot/boot/loader/entries.staged/bootc_test_os-44-1.conf`);
  assert.deepEqual(delC.gc.stateDirs, [idC]);
  assert.equal(delC.gc.untagged.length, 1);
  assert.ok(delC.gc.repo.objectsRemoved > 0);
  gone(`${loader}/entries.staged`);
  gone(`${root}/run/composefs/staged-deployment`);
  gone(`${repo}/images/${idC}`);
  assert.deepEqual(names(`${physical}/state/deploy`), [idA, idB].sort());
  assert.deepEqual(
    names(`${physical}/boot`).filter((n) => n.startsWith("bootc_")),
    [
      `bootc_composefs-${idA}`,
      `bootc_composefs-${idB}`,
    ].sort(),
  );
  let s = JSON.parse(await ok(["--root", root, "status", "--json"]));
  assert.equal(s.status.staged, null);
  assert.equal(s.status.rollback.composefs.verity, idA);

  // The rollback, queued to boot next: the rollback is undone first, then A and all it alone used go.
  await ok(["--root", root, "rollback"]);
  const delA = await ok(["--root", root, "delete-deployment", idA]);
  assert.match(delA, /^notice: Reverting queued rollback state\ndeleted rollback deployment [0-9a-f]{128}\n/);
  assert.match(delA, new RegExp(`^removed kernel bootc_composefs-${idA}$`, "m"));
  assert.match(delA, new RegExp(`^removed the state of deployment ${idA}$`, "m"));
  assert.match(delA, /^Objects: [1-9]\d* removed \(\d+ bytes\)$/m);
  assert.deepEqual(names(`${loader}/entries`), ["bootc_bootc-43-1.conf"]);
  assert.match(Deno.readTextFileSync(`${loader}/entries/bootc_bootc-43-1.conf`), new RegExp(`composefs=\\?${idB}`));
  gone(`${physical}/boot/bootc_composefs-${idA}`);
  gone(`${repo}/images/${idA}`);
  assert.deepEqual(names(`${physical}/state/deploy`), [idB]);
  s = JSON.parse(await ok(["--root", root, "status", "--json"]));
  assert.equal(s.status.booted.composefs.verity, idB);
  assert.equal(s.status.rollback, null);
  assert.equal(s.status.rollbackQueued, false);
  assert.deepEqual(
    JSON.parse(await ok(["--repo", repo, "oci", "images", "--json"])).map((i: { name: string }) => i.name),
    [`localhost/bootc-${s.status.booted.image.imageDigest}`],
  );
  await ok(["--repo", repo, "repo", "fsck"]);
  r = await gc("--assert-no-op", "--prune-repo");
  assert.equal(r.code, 0, r.stdout + r.stderr);

  // Garbage: a kernel no entry loads, a state directory no entry names, a bootc tag no origin names.
  const stray = "e".repeat(128);
  Deno.mkdirSync(`${physical}/boot/bootc_composefs-${stray}`);
  Deno.mkdirSync(`${physical}/state/deploy/${stray}/etc`, { recursive: true });
  await ok(["--repo", repo, "oci", "pull", imageC, "--name", "localhost/bootc-sha256:stray"]);
  await ok(["--repo", repo, "oci", "pull", imageA, "--name", "app/keep-me"]);
  const dry = await gc("--dry-run", "--prune-repo");
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /^Dry run \(no files deleted\)\n/);
  assert.match(dry.stdout, new RegExp(`^would remove kernel bootc_composefs-${stray}$`, "m"));
  assert.match(dry.stdout, new RegExp(`^would remove the state of deployment ${stray}$`, "m"));
  assert.match(dry.stdout, /^would untag localhost\/bootc-sha256:stray$/m);
  r = await gc("--assert-no-op", "--prune-repo");
  assert.equal(r.code, 1);
  assert.match(r.stderr, /composefs-gc is not a no-op/);
  assert.ok(Deno.statSync(`${physical}/state/deploy/${stray}`).isDirectory, "a dry run deletes nothing");
  assert.ok(Deno.statSync(`${physical}/boot/bootc_composefs-${stray}`).isDirectory);
  // Without --prune-repo: the kernel only.
  assert.match(await ok(["--root", root, "internals", "composefs-gc"]), /^removed kernel bootc_composefs-e+$/m);
  gone(`${physical}/boot/bootc_composefs-${stray}`);
  assert.ok(Deno.statSync(`${physical}/state/deploy/${stray}`).isDirectory);
  r = await gc("--assert-no-op", "--prune-repo");
  assert.equal(r.code, 1, "a state directory and a tag to remove are not a no-op either");
  const pruned = JSON.parse(await ok(["--root", root, "internals", "composefs-gc", "--prune-repo", "--json"]));
  assert.deepEqual(pruned.stateDirs, [stray]);
  assert.deepEqual(pruned.untagged, ["localhost/bootc-sha256:stray"]);
  assert.deepEqual(
    JSON.parse(await ok(["--repo", repo, "oci", "images", "--json"])).map((i: { name: string }) => i.name).sort(),
    ["app/keep-me", `localhost/bootc-${s.status.booted.image.imageDigest}`].sort(),
    "other tags are never touched",
  );

  // A deployment from bootc 1.12–1.15 (an .imginfo, no manifest digest in the origin): GC finds B's
  // manifest by its image id and keeps the tag; with the tag gone too, B's boot image is still kept,
  // with a warning.
  const bTag = `localhost/bootc-${s.status.booted.image.imageDigest}`;
  const inspect = async (what: string) => JSON.parse(await ok(["--repo", repo, "oci", "inspect", bTag, what]));
  Deno.writeTextFileSync(
    `${physical}/state/deploy/${idB}/${idB}.imginfo`,
    JSON.stringify({ config: await inspect("--config"), manifest: await inspect("--manifest") }),
  );
  const origin = `${physical}/state/deploy/${idB}/${idB}.origin`;
  const legacy = Deno.readTextFileSync(origin).replace(/\n\n\[image\]\nmanifest_digest = sha256:[0-9a-f]{64}$/, "");
  assert.doesNotMatch(legacy, /manifest_digest/);
  Deno.writeTextFileSync(origin, legacy);
  r = await gc("--prune-repo", "--json");
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).untagged, []);
  await ok(["--repo", repo, "oci", "untag", bTag]);
  r = await gc("--prune-repo", "--json");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`deployment ${idB}: EROFS image is protected but OCI metadata may be collected`));
  assert.ok(Deno.statSync(`${repo}/images/${idB}`).isFile);
  await ok(["--repo", repo, "repo", "fsck"]);
  await booted[Symbol.asyncDispose]();
});
