/**
 * `bootcfs install to-filesystem` into a scratch physical root, checked the way bootc's layout
 * is used at boot: the deployment id is `fsverity digest` of the boot image; that image, mounted
 * for real, has `/boot` and `/sysroot` emptied; `state/deploy/<id>/etc` and the shared `/var` are
 * what `cp -a` of the mounted image's `/etc` and `/var` gives (compared with GNU find/stat and
 * getfattr); the kernel and initramfs are the image's; the entry, origin and symlinks are exact.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { bootcfs } from "../helpers/cli.ts";
import { createLoopFs, requireRoot, run, scratchDir } from "../helpers/fs.ts";
import { dirListing } from "../helpers/layers.ts";
import { d, f, initramfs, osImage, osLayer, T, vmlinuz } from "../helpers/os_image.ts";

function install(target: string, image: string, ...more: string[]) {
  return bootcfs([
    "--progress",
    "none",
    "install",
    "to-filesystem",
    "--source-imgref",
    image,
    ...more,
    target,
  ]);
}

const sha256Hex = (...parts: Uint8Array[]) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest("hex");
};

Deno.test("install to-filesystem: boot image, state, kernel and entry as bootc lays them out", async () => {
  requireRoot();
  await using scratch = await scratchDir();
  const target = `${scratch.path}/sysroot`;
  Deno.mkdirSync(target);
  const image = await osImage(`${scratch.path}/oci`, osLayer());
  const r = await install(
    target,
    image,
    "--root-mount-spec",
    "UUID=1b2c",
    "--karg",
    "quiet",
    "--karg",
    "console=ttyS0",
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /has no fs-verity: installing with composefs=\?/);
  const id = /^deployment ([0-9a-f]{128})$/m.exec(r.stdout)?.[1];
  assert.ok(id, r.stdout);
  const repo = `${target}/composefs`;

  // The deployment id is the boot image's fs-verity digest, as the kernel checks it.
  const measured = await run("fsverity", ["digest", "--hash-alg=sha512", "--compact", `${repo}/images/${id}`]);
  assert.equal(measured.trim(), id);

  const kdir = `${target}/boot/bootc_composefs-${id}`;
  assert.deepEqual(Deno.readFileSync(`${kdir}/vmlinuz`), vmlinuz);
  assert.deepEqual(Deno.readFileSync(`${kdir}/initrd`), initramfs);
  const bootDigest = sha256Hex(vmlinuz, initramfs);

  assert.equal(
    Deno.readTextFileSync(`${target}/boot/loader/entries/bootc_test_os-42-1.conf`),
    "title Test OS 42\nversion 42\n" +
      `linux /boot/bootc_composefs-${id}/vmlinuz\ninitrd /boot/bootc_composefs-${id}/initrd\n` +
      `options root=UUID=1b2c rw quiet console=ttyS0 composefs=?${id} console=tty0 console=ttyS0,115200\n` +
      "sort-key bootc-test-os-0\n",
  );
  const manifest = JSON.parse(await (await bootcfs(["--repo", repo, "oci", "images", "--json"])).stdout)[0];
  const state = `${target}/state/deploy/${id}`;
  assert.equal(
    Deno.readTextFileSync(`${state}/${id}.origin`),
    `[origin]\ncontainer-image-reference = ostree-unverified-image:${image}\n\n` +
      `[boot]\nboot_type = bls\ndigest = ${bootDigest}\n\n[image]\nmanifest_digest = ${manifest.manifestDigest}`,
  );
  assert.equal(Deno.readLinkSync(`${state}/var`), "../../os/default/var");
  assert.equal(Deno.readLinkSync(`${target}/ostree/bootc`), "../composefs/bootc");
  assert.equal(Deno.statSync(repo).mode! & 0o777, 0o700);
  assert.deepEqual([...Deno.readDirSync(`${target}/state/deploy`)].map((e) => e.name), [id]);

  // The boot image, mounted: /boot and /sysroot emptied, with /usr's mtime seconds.
  const mnt = `${scratch.path}/mnt`;
  Deno.mkdirSync(mnt);
  const m = await bootcfs(["--insecure", "mount", "--basedir", `${repo}/objects`, `${repo}/images/${id}`, mnt]);
  assert.equal(m.code, 0, m.stderr);
  for (const dir of ["boot", "sysroot"]) {
    assert.deepEqual([...Deno.readDirSync(`${mnt}/${dir}`)], [], `/${dir} of the boot image`);
    assert.equal(Deno.statSync(`${mnt}/${dir}`).mtime!.getTime(), (T + 5) * 1000);
  }
  // state/etc is the image's /etc as `cp -a` copies it, without .updated.
  const etcImage = (await dirListing(`${mnt}/etc`)).filter((l) => !l.startsWith("/.updated ") && !l.startsWith("/ "));
  const etcState = await dirListing(`${state}/etc`);
  assert.deepEqual(etcState.filter((l) => !l.startsWith("/ ")), etcImage);
  assert.ok(etcImage.some((l) => l.startsWith("/capable ") && l.includes("security.capability=")), "xattr listed");
  assert.ok(etcImage.some((l) => l.startsWith("/hard2 ") && l.includes(" 2 /hard1 ")), "hardlink listed");
  assert.equal(Deno.statSync(`${state}/etc/app`).uid, 1000);
  assert.deepEqual(await dirListing(`${target}/state/os/default/var`), await dirListing(`${mnt}/var`));
  await run("umount", [mnt]);

  // The config records the boot image (GC keeps it); the plain image still has /boot's content.
  const inspect = JSON.parse((await bootcfs(["--repo", repo, "oci", "inspect", manifest.name])).stdout);
  assert.notEqual(inspect.composefs_erofs, id);
  assert.ok(JSON.stringify(inspect.composefs_boot_erofs).includes(id), JSON.stringify(inspect.composefs_boot_erofs));
  const gc = await bootcfs(["--repo", repo, "repo", "gc"]);
  assert.equal(gc.code, 0, gc.stderr);
  assert.ok(Deno.statSync(`${repo}/images/${id}`).isFile);
  const fsck = await bootcfs(["--repo", repo, "repo", "fsck"]);
  assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);

  // A second install into the same root is refused before anything changes.
  const entriesBefore = await dirListing(target);
  const again = await install(target, image, "--root-mount-spec=");
  assert.equal(again.code, 1);
  assert.match(again.stderr, /state\/deploy is not empty .*install needs a root without deployments/);
  assert.deepEqual(await dirListing(target), entriesBefore);
});

Deno.test("install to-filesystem: images it cannot boot are refused with nothing deployed", async () => {
  requireRoot();
  await using scratch = await scratchDir();
  const cases: [string, Uint8Array, RegExp][] = [
    ["no-sysroot", osLayer({ omit: ["sysroot/"] }), /the image has no \/sysroot directory/],
    ["no-kernel", osLayer({ omit: ["usr/lib/modules/"] }), /the image has no kernel/],
    [
      "bad-kargs",
      osLayer({ extra: [f("usr/lib/bootc/kargs.d/30-typo.toml", 'karg = ["x"]\n')] }),
      /30-typo\.toml:1: unknown key 'karg'/,
    ],
    [
      "selinux",
      osLayer({ extra: [d("etc/selinux/"), f("etc/selinux/config", "SELINUX=enforcing\nSELINUXTYPE=targeted\n")] }),
      /SELinux policy "targeted"/,
    ],
  ];
  for (const [name, tar, error] of cases) {
    const target = `${scratch.path}/${name}`;
    Deno.mkdirSync(target);
    const r = await install(target, await osImage(`${scratch.path}/${name}-oci`, tar), "--root-mount-spec=");
    assert.equal(r.code, 1, `${name}: ${r.stderr}`);
    assert.match(r.stderr, error, name);
    assert.equal(r.stderr.trim().split("\n").filter((l) => l.startsWith("error:")).length, 1, r.stderr);
    for (const path of ["state", "boot"]) {
      assert.throws(() => Deno.statSync(`${target}/${path}`), Deno.errors.NotFound, `${name}: ${path}`);
    }
  }
});

Deno.test("install to-filesystem: root= comes from the target filesystem's UUID, or must be given", async () => {
  requireRoot();
  await using scratch = await scratchDir();
  const image = await osImage(`${scratch.path}/oci`, osLayer());
  // A tmpfs has no block device: install asks for --root-mount-spec instead of guessing.
  const target = `${scratch.path}/tmpfs`;
  Deno.mkdirSync(target);
  await run("mount", ["-t", "tmpfs", "tmpfs", target]);
  const r = await install(target, image);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot find the UUID of the filesystem holding .*--root-mount-spec/);
  const ok = await install(target, image, "--root-mount-spec=", "--json");
  assert.equal(ok.code, 0, ok.stderr);
  const out = JSON.parse(ok.stdout);
  const entry = Deno.readTextFileSync(out.entry);
  assert.match(entry, new RegExp(`^options rw composefs=\\?${out.deployment} console=tty0 console=ttyS0,115200$`, "m"));

  // On a real filesystem it is the UUID blkid reads from the superblock.
  await using ext4 = await createLoopFs("ext4", { sizeMiB: 128 });
  const uuid = (await run("blkid", ["-p", "-o", "value", "-s", "UUID", ext4.device])).trim();
  const onDisk = await install(ext4.mountPoint, image, "--json");
  assert.equal(onDisk.code, 0, onDisk.stderr);
  const diskEntry = Deno.readTextFileSync(JSON.parse(onDisk.stdout).entry);
  assert.match(diskEntry, new RegExp(`^options root=UUID=${uuid} rw composefs=\\?[0-9a-f]{128} console=tty0 `, "m"));
});

Deno.test("install to-filesystem: a separate /boot gets paths from its root and systemd.mount-extra", async () => {
  requireRoot();
  await using scratch = await scratchDir();
  const image = await osImage(`${scratch.path}/oci`, osLayer());
  await using root = await createLoopFs("ext4", { sizeMiB: 128 });
  await using boot = await createLoopFs("ext4", { sizeMiB: 64 });
  const target = root.mountPoint;
  Deno.mkdirSync(`${target}/boot`);
  await run("mount", ["--bind", boot.mountPoint, `${target}/boot`]);
  const bootUuid = (await run("blkid", ["-p", "-o", "value", "-s", "UUID", boot.device])).trim();
  const r = await install(target, image, "--root-mount-spec=", "--json");
  assert.equal(r.code, 0, r.stderr);
  const { deployment: id, entry } = JSON.parse(r.stdout);
  assert.equal(entry, `${target}/boot/loader/entries/bootc_test_os-42-1.conf`);
  const text = Deno.readTextFileSync(entry);
  assert.match(text, new RegExp(`^linux /bootc_composefs-${id}/vmlinuz\ninitrd /bootc_composefs-${id}/initrd\n`, "m"));
  assert.match(
    text,
    new RegExp(
      `^options rw composefs=\\?${id} systemd.mount-extra=UUID=${bootUuid}:/boot:ext4:defaults console=tty0 `,
      "m",
    ),
  );
  // The kernel went to the boot filesystem itself.
  assert.deepEqual(Deno.readFileSync(`${boot.mountPoint}/bootc_composefs-${id}/vmlinuz`), vmlinuz);
  await run("umount", [`${target}/boot`]);

  // --boot-mount-spec without a separate /boot is a usage error.
  const other = `${scratch.path}/plain`;
  Deno.mkdirSync(other);
  const bad = await install(other, image, "--root-mount-spec=", "--boot-mount-spec", "UUID=x");
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--boot-mount-spec: .*\/boot is not a separate mount/);
});
