/**
 * The life of a system after install, the way bootc drives it: an installed deployment booted
 * for real (composefs image mounted as `/` with source `composefs:<id>`, state bind-mounted, as
 * the initramfs does), then `switch` to a new image (staged menu, state, marker), local `/etc`
 * changes, `composefs-finalize-staged` (the three-way merge and the menu exchange), a "reboot"
 * into the new deployment, `rollback` twice, `upgrade` with nothing new, and the refusals: a
 * switch to an existing deployment, and an `/etc` that cannot be merged.
 */
import assert from "node:assert/strict";
import { bootcfs } from "../helpers/cli.ts";
import { requireRoot, scratchDir } from "../helpers/fs.ts";
import { bootDeployment } from "../helpers/booted.ts";
import { d, f, osImage, osLayer } from "../helpers/os_image.ts";
import { gen } from "../helpers/oci.ts";
import { dirListing } from "../helpers/layers.ts";

type Status = {
  spec: { image: { image: string; transport: string } | null; bootOrder: string };
  status: {
    staged: Entry | null;
    booted: Entry | null;
    rollback: Entry | null;
    otherDeployments?: Entry[];
    rollbackQueued: boolean;
  };
};
type Entry = { composefs: { verity: string }; downloadOnly: boolean; image: { image: { image: string } } };

async function status(root: string): Promise<Status> {
  const r = await bootcfs(["--root", root, "status", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

async function ok(args: string[]): Promise<string> {
  const r = await bootcfs(["--progress", "none", ...args]);
  assert.equal(r.code, 0, `bootcfs ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

function entries(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const e of [...Deno.readDirSync(dir)].sort((a, b) => a.name < b.name ? -1 : 1)) {
    files.set(e.name, Deno.readTextFileSync(`${dir}/${e.name}`));
  }
  return files;
}

/** `key value` of an entry's line. */
function field(text: string, key: string): string {
  const m = new RegExp(`^${key} (.*)$`, "m").exec(text);
  assert.ok(m, `${key} in ${text}`);
  return m[1];
}

Deno.test("switch, finalize, reboot, rollback and upgrade on a booted deployment", async () => {
  requireRoot();
  await using scratch = await scratchDir();
  const physical = `${scratch.path}/disk`;
  const root = `${scratch.path}/root`;
  Deno.mkdirSync(physical);
  const imageA = await osImage(`${scratch.path}/a`, osLayer());
  const imageB = await osImage(
    `${scratch.path}/b`,
    osLayer({
      version: "43",
      kargs: ["console=ttyS0,115200", "mitigations=off"],
      extra: [f("etc/hostname", "new-default\n"), f("etc/new-default.conf", "from B\n"), f("etc/motd", "B\n")],
    }),
  );
  const install = JSON.parse(
    await ok([
      "install",
      "to-filesystem",
      "--source-imgref",
      imageA,
      "--root-mount-spec",
      "UUID=1b2c",
      "--karg",
      "quiet",
      "--json",
      physical,
    ]),
  );
  const idA: string = install.deployment;

  // The installed system, not booted: the host commands refuse it.
  const unbooted = `${scratch.path}/unbooted`;
  Deno.mkdirSync(unbooted);
  Deno.symlinkSync(physical, `${unbooted}/sysroot`);
  for (const cmd of [["rollback"], ["upgrade"], ["switch", imageA], ["composefs-finalize-staged"]]) {
    const r = await bootcfs(["--progress", "none", "--root", unbooted, ...cmd]);
    assert.equal(r.code, 1, `${cmd[0]}: ${r.stderr}`);
    assert.match(r.stderr, /unbooted is not a composefs-booted system/, cmd[0]);
  }

  let booted = await bootDeployment(physical, idA, root);
  let s = await status(root);
  assert.equal(s.status.booted?.composefs.verity, idA);
  assert.equal(s.status.rollback, null);
  assert.equal(s.status.staged, null);

  // Local changes on the running system: one edit, one new file with its owner and mode, one deletion.
  Deno.writeTextFileSync(`${root}/etc/hostname`, "my-host\n");
  Deno.writeTextFileSync(`${root}/etc/app/local.conf`, "mine\n", { mode: 0o600 });
  Deno.chownSync(`${root}/etc/app/local.conf`, 1000, 1000);
  Deno.removeSync(`${root}/etc/app/big.conf`);

  const sw = JSON.parse(await ok(["--root", root, "switch", "--transport", "oci", `${imageB.slice(4)}`, "--json"]));
  assert.equal(sw.staged, true);
  const idB: string = sw.deployment;
  assert.notEqual(idB, idA);
  const loader = `${physical}/boot/loader`;
  const staged = entries(`${loader}/entries.staged`);
  assert.deepEqual([...staged.keys()], ["bootc_test_os-43-0.conf", "bootc_test_os-43-1.conf"]);
  const primary = staged.get("bootc_test_os-43-1.conf")!;
  // The kernel is the same bytes: the new entry loads it from A's directory.
  assert.equal(
    primary,
    "title Test OS 43\nversion 43\n" +
      `linux /boot/bootc_composefs-${idA}/vmlinuz\ninitrd /boot/bootc_composefs-${idA}/initrd\n` +
      `options root=UUID=1b2c rw quiet composefs=?${idB} console=ttyS0,115200 mitigations=off\n` +
      "sort-key bootc-test-os-0\n",
  );
  const liveA = entries(`${loader}/entries`).get("bootc_test_os-42-1.conf")!;
  assert.equal(
    staged.get("bootc_test_os-43-0.conf"),
    liveA.replace("sort-key bootc-test-os-0", "sort-key bootc-test-os-1"),
  );
  assert.deepEqual(
    [...Deno.readDirSync(`${physical}/boot`)].map((e) => e.name).filter((n) => n.startsWith("bootc_")),
    [`bootc_composefs-${idA}`],
  );
  assert.equal(
    Deno.readTextFileSync(`${root}/run/composefs/staged-deployment`),
    `{"depl_id":"${idB}","finalization_locked":false}`,
  );
  assert.equal(Deno.readLinkSync(`${physical}/state/deploy/${idB}/var`), "../../os/default/var");
  assert.equal(Deno.readTextFileSync(`${physical}/state/deploy/${idB}/etc/hostname`), "new-default\n");
  s = await status(root);
  assert.equal(s.status.staged?.composefs.verity, idB);
  assert.equal(s.status.staged?.downloadOnly, false);
  assert.equal(s.status.booted?.composefs.verity, idA);
  assert.equal(s.spec.image?.image, imageB.slice(4));

  // Shutdown: finalize merges /etc and switches the menu.
  const fin = JSON.parse(await ok(["--root", root, "composefs-finalize-staged", "--json"]));
  assert.equal(fin.finalized, true);
  assert.deepEqual(fin.removedKernels, []);
  assert.throws(() => Deno.statSync(`${loader}/entries.staged`), Deno.errors.NotFound);
  assert.deepEqual(entries(`${loader}/entries`), staged);
  const newEtc = `${physical}/state/deploy/${idB}/etc`;
  assert.equal(Deno.readTextFileSync(`${newEtc}/hostname`), "my-host\n", "a local edit wins");
  assert.equal(Deno.readTextFileSync(`${newEtc}/new-default.conf`), "from B\n", "a new default arrives");
  assert.equal(Deno.readTextFileSync(`${newEtc}/app/local.conf`), "mine\n", "a local file is kept");
  const local = Deno.statSync(`${newEtc}/app/local.conf`);
  assert.deepEqual([local.uid, local.mode! & 0o7777], [1000, 0o600]);
  assert.throws(() => Deno.statSync(`${newEtc}/app/big.conf`), Deno.errors.NotFound, "a local deletion carries over");
  // Untouched files are the new image's, with their metadata.
  assert.deepEqual(
    (await dirListing(newEtc)).filter((l) => l.startsWith("/capable ") || l.startsWith("/suid-helper ")),
    (await dirListing(`${physical}/state/deploy/${idA}/etc`)).filter((l) =>
      l.startsWith("/capable ") || l.startsWith("/suid-helper ")
    ),
  );
  await booted[Symbol.asyncDispose]();

  // Reboot into B.
  booted = await bootDeployment(physical, idB, root);
  assert.equal(Deno.readTextFileSync(`${root}/etc/motd`), "B\n");
  s = await status(root);
  assert.equal(s.status.booted?.composefs.verity, idB);
  assert.equal(s.status.rollback?.composefs.verity, idA);
  assert.equal(s.status.rollbackQueued, false);

  // Rollback: A boots next; again: B boots next.
  assert.equal(await ok(["--root", root, "rollback"]), "Next boot: rollback deployment\n");
  const afterRollback = entries(`${loader}/entries`);
  assert.deepEqual([...afterRollback.keys()], ["bootc_bootc-42-0.conf", "bootc_bootc-42-1.conf"]);
  assert.equal(field(afterRollback.get("bootc_bootc-42-1.conf")!, "options").includes(`composefs=?${idA}`), true);
  assert.equal(field(afterRollback.get("bootc_bootc-42-1.conf")!, "sort-key"), "bootc-bootc-0");
  assert.equal(field(afterRollback.get("bootc_bootc-42-0.conf")!, "version"), "43");
  s = await status(root);
  assert.equal(s.status.rollbackQueued, true);
  assert.equal(s.spec.bootOrder, "rollback");
  assert.equal(
    await ok(["--root", root, "rollback"]),
    "notice: Reverting queued rollback state\nNext boot: current deployment\n",
  );
  s = await status(root);
  assert.equal(s.status.rollbackQueued, false);
  assert.equal(field(entries(`${loader}/entries`).get("bootc_bootc-43-1.conf")!, "options").includes(idB), true);

  // Upgrade of an unchanged image: nothing to do. Switching to A again: refused.
  assert.equal(await ok(["--root", root, "upgrade"]), `No changes in: ${imageB}\n`);
  const again = await bootcfs(["--progress", "none", "--root", root, "switch", "--transport", "oci", imageA.slice(4)]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /Target image has the same fs-verity digest as the existing Rollback deployment\./);
  assert.throws(() => Deno.statSync(`${loader}/entries.staged`), Deno.errors.NotFound);

  // C has its own kernel. Once C is booted, staging D collects A: nothing names it any more.
  const imageC = await osImage(`${scratch.path}/c`, osLayer({ version: "44", kernel: gen(150_000, "kernel-C") }));
  const idC = JSON.parse(await ok(["--root", root, "switch", "--transport", "oci", imageC.slice(4), "--json"]))
    .deployment;
  assert.ok(Deno.statSync(`${physical}/boot/bootc_composefs-${idC}/vmlinuz`).isFile);
  await ok(["--root", root, "composefs-finalize-staged"]);
  await booted[Symbol.asyncDispose]();
  booted = await bootDeployment(physical, idC, root);
  const tags = async () =>
    JSON.parse(await ok(["--repo", `${physical}/composefs`, "oci", "images", "--json"])).map((i: { name: string }) =>
      i.name
    );
  assert.equal((await tags()).length, 3);
  const imageD = await osImage(`${scratch.path}/d`, osLayer({ version: "45", extra: [f("etc/motd", "D\n")] }));
  const staged4 = JSON.parse(await ok(["--root", root, "switch", "--transport", "oci", imageD.slice(4), "--json"]));
  assert.deepEqual(staged4.gc.stateDirs, [idA]);
  assert.equal(staged4.gc.untagged.length, 1);
  assert.deepEqual(
    [...Deno.readDirSync(`${physical}/state/deploy`)].map((e) => e.name).sort(),
    [idB, idC, staged4.deployment].sort(),
  );
  assert.throws(() => Deno.statSync(`${physical}/composefs/images/${idA}`), Deno.errors.NotFound);
  assert.ok(Deno.statSync(`${physical}/composefs/images/${idB}`).isFile);
  // A's kernel directory stays: B's entry loads its kernel from there.
  assert.ok(Deno.statSync(`${physical}/boot/bootc_composefs-${idA}/vmlinuz`).isFile);
  assert.equal((await tags()).length, 3);
  await ok(["--repo", `${physical}/composefs`, "repo", "fsck"]);
  await booted[Symbol.asyncDispose]();
});

Deno.test("switch: an /etc that cannot be merged is listed and refused, and what was staged stays", async () => {
  requireRoot();
  await using scratch = await scratchDir();
  const physical = `${scratch.path}/disk`;
  Deno.mkdirSync(physical);
  const imageA = await osImage(`${scratch.path}/a`, osLayer());
  // In C, /etc/app is a file where A has a directory.
  const imageC = await osImage(
    `${scratch.path}/c`,
    osLayer({ version: "44", omit: ["etc/app/"], extra: [f("etc/app", "now a file\n"), d("etc/c.d/")] }),
  );
  const install = JSON.parse(
    await ok(["install", "to-filesystem", "--source-imgref", imageA, "--root-mount-spec=", "--json", physical]),
  );
  await using booted = await bootDeployment(physical, install.deployment, `${scratch.path}/root`);
  // A deployment staged before the refused one stays staged.
  const imageB = await osImage(`${scratch.path}/b`, osLayer({ version: "43", extra: [f("etc/motd", "B\n")] }));
  await ok(["--root", booted.root, "switch", imageB]);
  const marker = Deno.readTextFileSync(`${booted.root}/run/composefs/staged-deployment`);
  Deno.writeTextFileSync(`${booted.root}/etc/app/secret`, "changed\n");
  // Everything outside the repository, directories without their mtimes (temporary names come and go).
  const shape = async () =>
    (await dirListing(physical)).filter((l) => !l.startsWith("/composefs/")).map((l) =>
      l.split(" ")[1] === "d" ? l.split(" ")[0] : l
    );
  const before = await shape();
  const r = await bootcfs(["--progress", "none", "--root", booted.root, "switch", imageC]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /Unmergable Directory 'app' now defaults to a file in new etc/);
  assert.match(r.stderr, /error: .*Merge conflicts found in etc/);
  // The pull stays in the repository (as bootc's does); no state, menu, kernel or marker.
  assert.deepEqual(await shape(), before);
  assert.equal(Deno.readTextFileSync(`${booted.root}/run/composefs/staged-deployment`), marker);

  // A second bootcfs while one holds the deployments lock is refused at once.
  const hold = new Deno.Command("flock", { args: [`${physical}/state`, "sleep", "30"] }).spawn();
  try {
    for (let i = 0; i < 50; i++) {
      const probe = await new Deno.Command("flock", { args: ["-n", `${physical}/state`, "true"] }).output();
      if (probe.code !== 0) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    const locked = await bootcfs(["--progress", "none", "--root", booted.root, "rollback"]);
    assert.equal(locked.code, 1);
    assert.match(locked.stderr, /another bootcfs is changing the deployments of .*is locked/);
  } finally {
    hold.kill();
    await hold.status;
  }
});
