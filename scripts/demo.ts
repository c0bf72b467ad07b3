/**
 * The README's first command: bootcfs's main job on an embedded default, run as a user runs the
 * CLI (each command printed, then its output), all inside a scratch directory.
 *
 * 1. generate the sample OS image (scripts/fixtures/sample_image.ts) as an OCI layout;
 * 2. create a repository and pull the image into it (layers → splitstreams and objects, merged
 *    tree → EROFS image, tag);
 * 3. list and inspect it, check the repository;
 * 4. as root: mount the composefs image for real and read files through it.
 *
 * Deploying into a scratch root and `bootcfs status` join this once the host commands exist.
 */
import { writeSampleImage } from "./fixtures/sample_image.ts";
import { V8_FLAGS } from "../lib/runtime/v8_flags.ts";

const main = new URL("../main.ts", import.meta.url).pathname;
const bin = Deno.env.get("BOOTCFS_BIN");
const argv0 = bin ? [bin] : [Deno.execPath(), "run", "--allow-all", "--quiet", `--v8-flags=${V8_FLAGS}`, main];

/** Runs one bootcfs command as a user would, echoing it; fails the demo if it fails. */
async function bootcfs(...args: string[]): Promise<string> {
  console.log(`\n$ bootcfs ${args.join(" ")}`);
  const r = await new Deno.Command(argv0[0], {
    args: [...argv0.slice(1), ...args],
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
const repo = `${scratch}/repo`;
const mnt = `${scratch}/mnt`;
let mounted = false;
try {
  await bootcfs("--version");
  const layout = `${scratch}/sample-oci`;
  const digest = await writeSampleImage(layout, "1");
  console.log(`\n# generated the sample OS image: oci:${layout}:1 (manifest ${digest})`);

  await bootcfs("repo", "init", "--insecure", repo);
  await bootcfs("--repo", repo, "--progress", "plain", "oci", "pull", `oci:${layout}:1`, "--name", "sample");
  await bootcfs("--repo", repo, "oci", "images");
  const [image] = JSON.parse(await bootcfs("--repo", repo, "oci", "images", "--json"));
  await bootcfs("--repo", repo, "repo", "fsck");

  if (Deno.uid() === 0) {
    Deno.mkdirSync(mnt);
    await bootcfs("--repo", repo, "--insecure", "oci", "mount", "sample", mnt);
    mounted = true;
    show(`${mnt}/usr/lib/os-release`);
    show(`${mnt}/etc/motd`);
    console.log(`\n$ ls ${mnt} ${mnt}/etc`);
    for (const d of [mnt, `${mnt}/etc`]) console.log([...Deno.readDirSync(d)].map((e) => e.name).sort().join("  "));
    await bootcfs("umount", mnt);
    mounted = false;
  } else {
    console.log("\n# not root: skipping the real composefs mount");
  }
  // The image id is the fs-verity digest of the EROFS image; the kernel command line names it.
  console.log(`\n# image id ${image.imageId}: the kernel command line composefs=${image.imageId} boots it`);
} finally {
  if (mounted) await new Deno.Command("umount", { args: ["-l", mnt] }).output();
  Deno.removeSync(scratch, { recursive: true });
}
