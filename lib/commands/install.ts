/**
 * `bootcfs install to-filesystem` (bootc-layout.md §3.1, the composefs parts): the repository
 * created in the target, the image pulled into it and tagged, then the deployment installed
 * (lib/deploy/install.ts). Partitioning, the bootloader binaries (bootupd, bootctl) and SELinux
 * labelling of the target are left to the tools that own them.
 *
 * @module
 */
import type { Command, CommandBody, Context } from "../cli/command.ts";
import { installCmdline } from "../boot/type1.ts";
import { checkEmptyTarget, installDeployment } from "../deploy/install.ts";
import { UsageError, withContext } from "../error/mod.ts";
import { verityAvailable } from "../fsverity/kernel.ts";
import { deviceSpec, filesystemSpec, separateMount } from "../deploy/mount_spec.ts";
import { Repository } from "../repository/mod.ts";
import { pullOptions, pullTagged } from "./pull.ts";

/**
 * `systemd.mount-extra=<spec>:/boot:<fstype>:defaults` when TARGET/boot is a separate filesystem
 * (so the booted system mounts it where GRUB reads it), else null.
 */
async function bootMountArg(target: string, given: string | undefined): Promise<string | null> {
  const m = separateMount(`${target}/boot`);
  if (!m) {
    if (given !== undefined) throw new UsageError(`--boot-mount-spec: ${target}/boot is not a separate mount`);
    return null;
  }
  const spec = given ?? await deviceSpec(m.source);
  if (!spec) {
    throw new Error(`cannot find the UUID of the filesystem mounted at ${target}/boot; pass --boot-mount-spec UUID=…`);
  }
  return `systemd.mount-extra=${spec}:/boot:${m.fsType}:defaults`;
}

function targetOf(args: string[]): string {
  if (args.length !== 1) throw new UsageError(`expected TARGET, got ${args.length} argument(s)`);
  const target = args[0].replace(/\/+$/, "") || "/";
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(target);
  } catch {
    throw new UsageError(`${target} does not exist`);
  }
  if (!st.isDirectory) throw new UsageError(`${target} is not a directory`);
  return target;
}

async function toFilesystem(ctx: Context, target: string, v: Record<string, unknown>): Promise<void> {
  const image = v["source-imgref"] as string | undefined;
  if (!image) throw new UsageError("--source-imgref IMAGE is required (bootcfs does not run inside the image)");
  const kargs = (v.karg as string[] | undefined) ?? [];
  const opts = pullOptions(v);
  checkEmptyTarget(target);
  const given = v["root-mount-spec"] as string | undefined;
  const rootSpec = given ?? await filesystemSpec(target);
  if (rootSpec === null) {
    throw new Error(
      `cannot find the UUID of the filesystem holding ${target}; pass --root-mount-spec UUID=… ` +
        "(or --root-mount-spec= to leave root= to discoverable partitions)",
    );
  }
  const bootMount = await bootMountArg(target, v["boot-mount-spec"] as string | undefined);
  let allowMissing = v["allow-missing-verity"] === true || ctx.globals.insecure;
  if (!allowMissing && !verityAvailable(target)) {
    ctx.log.warn(`${target} has no fs-verity: installing with composefs=? (fs-verity not enforced)`);
    allowMissing = true;
  }
  // bootc's layout: the repository, its bootc/ directory, and ostree/bootc pointing at it.
  const repoDir = `${target}/composefs`;
  const { repo } = Repository.init(repoDir, {
    alg: "sha512",
    formats: { default: 1, extra: [] },
    insecure: allowMissing,
    log: (m) => ctx.log.debug(m),
  });
  try {
    Deno.chmodSync(repoDir, 0o700);
    Deno.mkdirSync(`${repoDir}/bootc`, { recursive: true });
    Deno.mkdirSync(`${target}/ostree`, { recursive: true });
    try {
      Deno.symlinkSync("../composefs/bootc", `${target}/ostree/bootc`);
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
    const { result, imgref } = await pullTagged(ctx, repo, image, opts);
    const r = await withContext(`installing ${image} to ${target}`, () =>
      installDeployment({
        target,
        repo,
        manifestDigest: result.manifestDigest,
        imgref,
        cmdline: (id, imageKargs) =>
          installCmdline({ rootSpec: rootSpec || null, kargs, id, insecure: allowMissing, bootMount, imageKargs }),
        log: (m) => ctx.log.debug(m),
      }));
    ctx.log.info(`Installed deployment ${r.id}`, { "bootc.operation": "install", "bootc.deployment": r.id });
    if (v.json) {
      ctx.out.json({
        deployment: r.id,
        manifestDigest: result.manifestDigest,
        bootDigest: r.bootDigest,
        kernel: r.kver,
        entry: r.entry,
        state: r.stateDir,
        missingVerityAllowed: allowMissing,
      });
      return;
    }
    ctx.out.line(`deployment ${r.id}`);
    ctx.out.line(`kernel     ${r.kver} (boot digest ${r.bootDigest})`);
    ctx.out.line(`entry      ${r.entry}`);
    ctx.out.line(`state      ${r.stateDir}`);
  } finally {
    repo.close();
  }
}

const toFilesystemCommand: Command = {
  name: "to-filesystem",
  summary: "install an image to a mounted root filesystem",
  usage: "--source-imgref IMAGE [--karg K]… [--root-mount-spec SPEC] [--allow-missing-verity] [--json] TARGET",
  description: "Installs IMAGE to TARGET, the physical root of a new system (mounted, empty but for /boot): " +
    "creates the composefs repository TARGET/composefs (sha512, EROFS V1) and pulls IMAGE into it as `bootcfs " +
    "pull` does, builds the boot image whose fs-verity digest is the deployment id, writes " +
    "TARGET/state/deploy/<id>/ (etc copied from the image, var, <id>.origin) and seeds TARGET/state/os/default/var, " +
    "copies the image's kernel and initramfs to TARGET/boot/bootc_composefs-<id>/ and writes the GRUB BLS entry " +
    "TARGET/boot/loader/entries/bootc_<os>-<version>-1.conf with `root=<SPEC> rw <kargs> composefs=<id>`, " +
    "systemd.mount-extra=…:/boot:… when TARGET/boot is a separate filesystem, and the arguments of the image's " +
    "/usr/lib/bootc/kargs.d/*.toml. " +
    "Without fs-verity on TARGET (or with --allow-missing-verity / --insecure) the entry says composefs=?<id>. " +
    "The bootloader itself is not installed (bootupd or bootctl do that). Images that boot a UKI, ship their own " +
    "BLS entries, or carry an SELinux policy are refused for now.",
  options: {
    "source-imgref": { type: "string", value: "IMAGE", help: "image to install (as for `bootcfs pull`)" },
    karg: { type: "string", multiple: true, value: "K", help: "add a kernel argument (repeatable)" },
    "boot-mount-spec": {
      type: "string",
      value: "SPEC",
      help: "source of a separate TARGET/boot for systemd.mount-extra (default: its UUID)",
    },
    "root-mount-spec": {
      type: "string",
      value: "SPEC",
      help: "root= value (default: UUID of TARGET's filesystem; empty: none)",
    },
    "allow-missing-verity": { type: "boolean", help: "boot with composefs=? (fs-verity not enforced)" },
    "tls-verify": { type: "string", value: "BOOL", help: "false allows plain HTTP registries" },
    authfile: { type: "string", value: "FILE", help: "registry credentials (auth.json)" },
    platform: { type: "string", value: "OS/ARCH[/VARIANT]", help: "platform to pick from an image index" },
    json: { type: "boolean", help: "print the result as JSON" },
  },
  async run(ctx, args) {
    await toFilesystem(ctx, targetOf(args.positionals), args.values);
  },
};

/** `bootcfs install`. */
export const installCommand: CommandBody = {
  description: "Installs an image as the first deployment of a new system (bootc install).",
  subcommands: [toFilesystemCommand],
};
