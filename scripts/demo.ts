/**
 * The README's first command: bootcfs's main job on an embedded default, run as a user runs the
 * CLI (each command printed, then its output), all inside a scratch directory.
 *
 * 1. generate the sample OS image (scripts/fixtures/sample_image.ts) as an OCI layout;
 * 2. install it into a scratch root (`install to-filesystem ROOT/sysroot`): repository created,
 *    image pulled (layers → splitstreams and objects, merged tree → EROFS image, tag), boot image,
 *    `state/deploy/<id>/`, kernel and BLS entry;
 * 3. list the image, check the repository, show the entry and origin, and list the deployment
 *    with `bootcfs --root ROOT status`;
 * 4. mount the deployment's composefs image for real, as the initramfs does, and read files
 *    through it.
 *
 * Installing needs root (files owned by root, device nodes); without root the demo pulls the
 * image into the scratch repository and stops there.
 */
import { writeSampleImage } from "./fixtures/sample_image.ts";
import { bootcfsCommand } from "../tests/helpers/cli.ts";

/** Runs one bootcfs command as a user would, echoing it; fails the demo if it fails. */
async function bootcfs(...args: string[]): Promise<string> {
  console.log(`\n$ bootcfs ${args.join(" ")}`);
  const [cmd, argv] = bootcfsCommand(args);
  const r = await new Deno.Command(cmd, {
    args: argv,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  Deno.stdout.writeSync(r.stdout);
  if (r.code !== 0) throw new Error(`bootcfs ${args.join(" ")} failed with exit code ${r.code}`);
  return new TextDecoder().decode(r.stdout);
}

function show(path: string) {
  console.log(`\n$ cat ${path}`);
  console.log(Deno.readTextFileSync(path).trimEnd());
}

const scratch = Deno.makeTempDirSync({ prefix: "bootcfs-demo-" });
const root = `${scratch}/root`;
const sysroot = `${root}/sysroot`;
const mnt = `${scratch}/mnt`;
try {
  await bootcfs("--version");
  const layout = `${scratch}/sample-oci`;
  const digest = await writeSampleImage(layout, "1");
  console.log(`\n# generated the sample OS image: oci:${layout}:1 (manifest ${digest})`);
  Deno.mkdirSync(sysroot, { recursive: true });

  if (Deno.uid() === 0) await installDemo(layout);
  else {
    console.log("\n# not root: pulling into the scratch repository only (installing needs root)");
    await bootcfs("--root", root, "repo", "init", "--insecure");
    await bootcfs("--root", root, "--progress", "plain", "pull", `oci:${layout}:1`);
    await bootcfs("--root", root, "oci", "images");
    await bootcfs("--root", root, "repo", "fsck");
  }
} finally {
  Deno.removeSync(scratch, { recursive: true });
}

/** Install, status and the real mount (unmounted again, also when something fails). */
async function installDemo(layout: string): Promise<void> {
  // The scratch root has no block device of its own: no root= argument (discoverable partitions).
  const installed = JSON.parse(
    await bootcfs(
      "--progress",
      "plain",
      "install",
      "to-filesystem",
      "--source-imgref",
      `oci:${layout}:1`,
      "--root-mount-spec=",
      "--json",
      sysroot,
    ),
  );
  const id: string = installed.deployment;
  await bootcfs("--root", root, "oci", "images");
  await bootcfs("--root", root, "repo", "fsck");
  show(installed.entry);
  show(`${installed.state}/${id}.origin`);
  console.log(`\n$ ls ${installed.state} ${installed.state}/etc`);
  for (const d of [installed.state, `${installed.state}/etc`]) {
    console.log([...Deno.readDirSync(d)].map((e) => e.name).sort().join("  "));
  }
  await bootcfs("--root", root, "status", "--format", "humanreadable");

  // What the initramfs does with composefs=<id>: the EROFS image over the repository's objects.
  Deno.mkdirSync(mnt);
  const repo = `${sysroot}/composefs`;
  await bootcfs("--insecure", "mount", "--basedir", `${repo}/objects`, `${repo}/images/${id}`, mnt);
  let mounted = true;
  try {
    show(`${mnt}/usr/lib/os-release`);
    show(`${mnt}/etc/motd`);
    console.log(`\n$ ls ${mnt} ${mnt}/etc`);
    for (const d of [mnt, `${mnt}/etc`]) console.log([...Deno.readDirSync(d)].map((e) => e.name).sort().join("  "));
    await bootcfs("umount", mnt);
    mounted = false;
  } finally {
    if (mounted) await new Deno.Command("umount", { args: ["-l", mnt] }).output();
  }
  // The deployment id is the fs-verity digest of the boot image; the entry's command line names it.
  console.log(`\n# deployment ${id}: the entry's composefs=?${id} boots it`);
}
