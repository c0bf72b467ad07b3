/**
 * The boot-artifact prefix migration on real directories, the way bootc's TestRoot builds a legacy
 * system (bootc-layout.md §4.1, §8.1): GRUB's BLS entries in /boot, systemd-boot's on an ESP,
 * GRUB's user.cfg for UKIs, a rename that fails half-way, a crash before the switch, and
 * `bootcfs pull` running it first. The ESPs are tmpfs mounts: this kernel has no vfat.
 */
import assert from "node:assert/strict";
import { hostBootContext } from "../../lib/boot/host.ts";
import { migrateBootPrefix } from "../../lib/boot/migrate.ts";
import { bootcfs, run } from "../helpers/cli.ts";
import { requireRoot, scratchDir } from "../helpers/fs.ts";
import { errorChain } from "../../lib/error/mod.ts";
import { writeSampleImage } from "../../scripts/fixtures/sample_image.ts";

const A = "a1".repeat(32), B = "b2".repeat(32), C = "c3".repeat(32);
const P = "bootc_composefs-";

/** Asserts that `fn` throws an error whose whole chain (as the CLI prints it) matches `re`. */
function assertFails(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e) => {
    assert.match(errorChain(e), re);
    return true;
  });
}

/** The state directory of a deployment, which marks a physical root as bootc's. */
async function deployment(root: string, id: string): Promise<void> {
  await Deno.mkdir(`${root}/sysroot/state/deploy/${id}/etc`, { recursive: true });
}

async function write(path: string, text: string): Promise<void> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(path, text);
}

function type1Entry(version: string, bootPath: string, verity: string): string {
  return `title Fedora\nversion ${version}\nlinux ${bootPath}/vmlinuz\ninitrd ${bootPath}/initrd\n` +
    `options rw composefs=${verity}\nsort-key bootc-fedora-0\n`;
}

/** Every file under `dir` with its content, for before/after comparisons. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string, rel: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) {
        out[`${rel}${e.name}/`] = "";
        await walk(p, `${rel}${e.name}/`);
      } else out[`${rel}${e.name}`] = await Deno.readTextFile(p);
    }
  };
  await walk(dir, "");
  return out;
}

/** A legacy GRUB system under `root`: A installed, B a user-space upgrade sharing A's kernel, C staged. */
async function legacyGrub(root: string): Promise<string> {
  const boot = `${root}/sysroot/boot`;
  for (const id of [A, B, C]) await deployment(root, id);
  await write(`${boot}/${A}/vmlinuz`, "fake-kernel");
  await write(`${boot}/${A}/initrd`, "fake-initrd");
  await write(`${boot}/${C}/vmlinuz`, "fake-kernel-2");
  await write(`${boot}/${C}/initrd`, "fake-initrd-2");
  await write(`${boot}/loader/entries/bootc_fedora-43-1.conf`, type1Entry("43", `/boot/${A}`, B));
  await write(`${boot}/loader/entries/bootc_fedora-42-0.conf`, type1Entry("42", `/boot/${A}`, A));
  await write(`${boot}/loader/entries.staged/bootc_fedora-44-1.conf`, type1Entry("44", `/boot/${C}`, C));
  await write(`${boot}/loader/entries.staged/bootc_fedora-43-0.conf`, type1Entry("43", `/boot/${A}`, B));
  await write(`${boot}/loader/entries/notes.txt`, "not an entry");
  await write(`${root}/usr/lib/os-release`, 'NAME="Fedora Linux"\nID=fedora\n');
  return boot;
}

Deno.test("prefix migration: GRUB BLS entries and shared kernel directories, live and staged, idempotent", async () => {
  await using dir = await scratchDir();
  const boot = await legacyGrub(dir.path);
  const r = migrateBootPrefix(dir.path);
  assert.deepEqual(r.menus.sort(), [`${boot}/loader/entries`, `${boot}/loader/entries.staged`]);
  assert.equal(r.renamed.length, 2);
  const after = await snapshot(boot);
  assert.deepEqual(Object.keys(after).sort(), [
    `${P}${A}/`,
    `${P}${A}/initrd`,
    `${P}${A}/vmlinuz`,
    `${P}${C}/`,
    `${P}${C}/initrd`,
    `${P}${C}/vmlinuz`,
    "loader/",
    "loader/entries.staged/",
    "loader/entries.staged/bootc_fedora-43-0.conf",
    "loader/entries.staged/bootc_fedora-44-1.conf",
    "loader/entries/",
    "loader/entries/bootc_fedora-42-0.conf",
    "loader/entries/bootc_fedora-43-1.conf",
  ]);
  assert.equal(after["loader/entries/bootc_fedora-43-1.conf"], type1Entry("43", `/boot/${P}${A}`, B));
  assert.equal(after["loader/entries.staged/bootc_fedora-44-1.conf"], type1Entry("44", `/boot/${P}${C}`, C));
  assert.equal(after[`${P}${A}/vmlinuz`], "fake-kernel");
  // The second run finds nothing to do and changes nothing.
  const again = migrateBootPrefix(dir.path);
  assert.deepEqual(again, { renamed: [], menus: [] });
  assert.deepEqual(await snapshot(boot), after);
});

Deno.test("prefix migration: a physical root without composefs deployments is not touched", async () => {
  await using dir = await scratchDir();
  const boot = await legacyGrub(dir.path);
  await Deno.remove(`${dir.path}/sysroot/state`, { recursive: true });
  const before = await snapshot(boot);
  assert.deepEqual(migrateBootPrefix(dir.path), { renamed: [], menus: [] });
  assert.deepEqual(await snapshot(boot), before);
});

Deno.test("prefix migration: a scratch menu left by a crash is dropped; renamed directories are healed", async () => {
  await using dir = await scratchDir();
  const boot = await legacyGrub(dir.path);
  // As if a run had renamed A's directory and died before switching the menus.
  await Deno.rename(`${boot}/${A}`, `${boot}/${P}${A}`);
  await write(`${boot}/loader/entries.bootcfs-migrate/half-written.conf`, "version");
  const r = migrateBootPrefix(dir.path);
  assert.deepEqual(r.renamed, [`${boot}/${C} -> ${boot}/${P}${C}`]);
  const after = await snapshot(boot);
  assert.ok(!("loader/entries.bootcfs-migrate/" in after));
  assert.equal(after["loader/entries/bootc_fedora-42-0.conf"], type1Entry("42", `/boot/${P}${A}`, A));
});

Deno.test("prefix migration: a rename that fails undoes the others and leaves the menus as they were", async () => {
  requireRoot();
  await using dir = await scratchDir();
  const boot = `${dir.path}/sysroot/boot`;
  const esp = `${boot}/efi`;
  await deployment(dir.path, A);
  await write(`${boot}/${A}/vmlinuz`, "k");
  await write(`${boot}/loader/entries/a.conf`, type1Entry("1", `/boot/${A}`, A));
  await write(`${boot}/loader/entries/b.conf`, `version 2\nefi /EFI/Linux/bootc/${B}.efi\n`);
  await Deno.mkdir(esp);
  await run("mount", ["-t", "tmpfs", "esp", esp]);
  await write(`${esp}/EFI/Linux/bootc/${B}.efi`, "uki");
  await run("mount", ["-o", "remount,ro", esp]);
  const before = await snapshot(`${boot}/loader`);
  assertFails(
    () => migrateBootPrefix(dir.path),
    new RegExp(`migrating the boot entries in ${boot}/loader: renameat2 .*${B}\\.efi.*EROFS`),
  );
  assert.ok((await Deno.stat(`${boot}/${A}`)).isDirectory, "the kernel directory is renamed back");
  const menus = Object.entries(await snapshot(`${boot}/loader`)).filter(([k]) =>
    !k.startsWith("entries.bootcfs-migrate/")
  );
  assert.deepEqual(Object.fromEntries(menus), before);
  await run("mount", ["-o", "remount,rw", esp]);
  const r = migrateBootPrefix(dir.path);
  assert.equal(r.renamed.length, 2);
  assert.deepEqual(Object.keys(await snapshot(`${esp}/EFI/Linux/bootc`)), [`${P}${B}.efi`]);
});

Deno.test("prefix migration: systemd-boot on the ESP, Type-1 and UKIs (also from EFI/Linux), addons", async () => {
  requireRoot();
  await using dir = await scratchDir();
  const esp = `${dir.path}/efi`;
  await Deno.mkdir(esp);
  await run("mount", ["-t", "tmpfs", "esp", esp]);
  await deployment(dir.path, A);
  await write(`${dir.path}/usr/lib/os-release`, "ID=fedora\n");
  await write(`${esp}/EFI/Linux/${A}/vmlinuz`, "k");
  await write(`${esp}/EFI/Linux/${A}/initrd`, "i");
  await write(`${esp}/EFI/Linux/${B}.efi`, "old place");
  await write(`${esp}/EFI/Linux/bootc/${C}.efi`, "uki");
  await write(`${esp}/EFI/Linux/bootc/${C}.efi.extra.d/debug.addon.efi`, "addon");
  await write(`${esp}/loader/entries/bootc_fedora-1-0.conf`, type1Entry("1", `/EFI/Linux/${A}`, A));
  await write(`${esp}/loader/entries/bootc_fedora-2-0.conf`, `title T\nversion 2\nefi /EFI/Linux/${B}.efi\n`);
  await write(`${esp}/loader/entries/bootc_fedora-3-1.conf`, `title T\nversion 3\nuki /EFI/Linux/bootc/${C}.efi\n`);
  assert.equal(hostBootContext(dir.path).esp, esp);
  const r = migrateBootPrefix(dir.path);
  assert.deepEqual(r.menus, [`${esp}/loader/entries`]);
  const after = await snapshot(esp);
  assert.deepEqual(Object.keys(after).filter((k) => k.startsWith("EFI/")).sort(), [
    "EFI/",
    "EFI/Linux/",
    "EFI/Linux/bootc/",
    `EFI/Linux/bootc/${P}${B}.efi`,
    `EFI/Linux/bootc/${P}${C}.efi`,
    `EFI/Linux/bootc/${P}${C}.efi.extra.d/`,
    `EFI/Linux/bootc/${P}${C}.efi.extra.d/debug.addon.efi`,
    `EFI/Linux/${P}${A}/`,
    `EFI/Linux/${P}${A}/initrd`,
    `EFI/Linux/${P}${A}/vmlinuz`,
  ]);
  assert.equal(
    after["loader/entries/bootc_fedora-2-0.conf"],
    `title T\nversion 2\nefi /EFI/Linux/bootc/${P}${B}.efi\n`,
  );
  assert.equal(
    after["loader/entries/bootc_fedora-3-1.conf"],
    `title T\nversion 3\nuki /EFI/Linux/bootc/${P}${C}.efi\n`,
  );
  assert.equal(after["loader/entries/bootc_fedora-1-0.conf"], type1Entry("1", `/EFI/Linux/${P}${A}`, A));
  assert.deepEqual(migrateBootPrefix(dir.path), { renamed: [], menus: [] });
});

Deno.test("prefix migration: GRUB with UKIs (user.cfg); without a mounted ESP it is a clear error", async () => {
  requireRoot();
  await using dir = await scratchDir();
  const grub = `${dir.path}/sysroot/boot/grub2`;
  await deployment(dir.path, A);
  const cfg =
    `\nif [ -f \${config_directory}/efiuuid.cfg ]; then\n        source \${config_directory}/efiuuid.cfg\nfi\n\n` +
    [A, B].map((id) =>
      `menuentry "Fedora 42: (${id})" {\ninsmod fat\ninsmod chain\nchainloader /EFI/Linux/${id}.efi\n}\n`
    )
      .join("");
  await write(`${grub}/user.cfg`, cfg);
  assertFails(
    () => migrateBootPrefix(dir.path),
    /migrating the boot entries in .*grub2: UKI (a1)+\.efi of a boot entry not found \(no ESP is mounted at .*\/sysroot\/boot\/efi, /,
  );
  const esp = `${dir.path}/sysroot/boot/efi`;
  await Deno.mkdir(esp);
  await run("mount", ["-t", "tmpfs", "esp", esp]);
  await write(`${esp}/EFI/Linux/bootc/${A}.efi`, "a");
  await write(`${esp}/EFI/Linux/${B}.efi`, "b");
  migrateBootPrefix(dir.path);
  const text = await Deno.readTextFile(`${grub}/user.cfg`);
  assert.match(
    text,
    new RegExp(`chainloader /EFI/Linux/bootc/${P}${A}\\.efi\n[^]*chainloader /EFI/Linux/bootc/${P}${B}\\.efi`),
  );
  assert.deepEqual(Object.keys(await snapshot(grub)), ["user.cfg"]);
  assert.deepEqual(Object.keys(await snapshot(`${esp}/EFI/Linux/bootc`)).sort(), [`${P}${A}.efi`, `${P}${B}.efi`]);
});

Deno.test("bootcfs pull migrates the boot entries first, and a broken entry stops it before anything is pulled", async () => {
  await using dir = await scratchDir();
  const boot = await legacyGrub(dir.path);
  const layout = `${dir.path}/layout`;
  await writeSampleImage(layout, "sample");
  const init = await bootcfs(["--root", dir.path, "--insecure", "repo", "init"]);
  assert.equal(init.code, 0, init.stderr);
  const pull = () => bootcfs(["--root", dir.path, "--insecure", "--progress", "none", "pull", `oci:${layout}:sample`]);
  await write(`${boot}/loader/entries/broken.conf`, "title no version\nlinux /boot/x/vmlinuz\n");
  const bad = await pull();
  assert.equal(bad.code, 1);
  assert.match(
    bad.stderr,
    /error: migrating the boot entries in .*loader: boot entry entries\/broken\.conf: BLS entry has no 'version'$/m,
  );
  assert.ok((await Deno.stat(`${boot}/${A}`)).isDirectory);
  const repo = `${dir.path}/sysroot/composefs`;
  assert.deepEqual([...Deno.readDirSync(repo)].map((e) => e.name), ["meta.json"], "nothing pulled");
  await Deno.remove(`${boot}/loader/entries/broken.conf`);
  const ok = await pull();
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stderr, /Migrated boot entries to the bootc_composefs- prefix/);
  assert.ok((await Deno.stat(`${boot}/${P}${A}`)).isDirectory);
  const again = await pull();
  assert.equal(again.code, 0, again.stderr);
  assert.doesNotMatch(again.stderr, /Migrated/);
});
