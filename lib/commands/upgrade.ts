/**
 * `bootcfs upgrade` and `bootcfs switch` (bootc-layout.md §3.3, §3.4): pull the image the booted
 * system follows (or a new one), and stage it as the next deployment (lib/deploy/stage.ts), to be
 * finalized at shutdown by `bootcfs composefs-finalize-staged`. The system is the one at `--root`:
 * `/` when booted, or a deployment mounted the way the initramfs mounts it.
 *
 * After staging, as bootc, what no deployment uses any more is collected (lib/deploy/gc.ts).
 * Not here yet: `--check`, `--apply` (reboot), `--download-only`, soft reboots, and the unified
 * storage auto-detection.
 *
 * @module
 */
import type { Command, CommandBody, Context } from "../cli/command.ts";
import { physicalRootOf } from "../boot/host.ts";
import { UsageError, withContext } from "../error/mod.ts";
import { FINALIZE_UNIT, startFinalizeUnit } from "../deploy/finalize_unit.ts";
import { lockDeployments } from "../deploy/lock.ts";
import { type ImageReference, pullReference } from "../deploy/origin.ts";
import { releaseDownloaded, stageDeployment } from "../deploy/stage.ts";
import { type Host, type ImageInfo, requireBooted } from "../deploy/status.ts";
import { readDeploymentImage } from "../deploy/status_read.ts";
import { formatManifestDiff, manifestDiff } from "../oci/manifest_diff.ts";
import { openSource } from "../oci/pull.ts";
import { selfCommand } from "../runtime/self.ts";
import { loadImage } from "../oci/source.ts";
import { pullOptions, pullTagged, splitImage } from "./pull.ts";
import { collectUnused } from "./deployment_gc.ts";
import { openRepository } from "./repo.ts";
import { readStatus } from "./status.ts";

/** The manifest annotation (and config label) of an image's version. */
const VERSION = "org.opencontainers.image.version";

const REGISTRY_OPTIONS: Command["options"] = {
  "tls-verify": { type: "string", value: "BOOL", help: "false allows plain HTTP registries" },
  authfile: { type: "string", value: "FILE", help: "registry credentials (auth.json)" },
  platform: { type: "string", value: "OS/ARCH[/VARIANT]", help: "platform to pick from an image index" },
  json: { type: "boolean", help: "print the result as JSON" },
};

/** `ref` with its tag replaced by `tag` (bootc's `--tag`): a digest is dropped, then the text after the last `:` of the name replaced. */
export function withTag(ref: string, tag: string): string {
  const name = ref.replace(/@sha256:[0-9a-f]+$/, "");
  const slash = name.lastIndexOf("/");
  const colon = name.lastIndexOf(":");
  return `${colon > slash ? name.slice(0, colon) : name}:${tag}`;
}

/** Starts the finalize unit (lib/deploy/finalize_unit.ts); returns why not, or null. */
function startFinalizer(ctx: Context): Promise<string | null> {
  return withContext(`starting ${FINALIZE_UNIT}`, () => startFinalizeUnit(ctx.globals.root, selfCommand()));
}

/** Tells the user that finalizing is theirs when the unit could not be started. */
function noteUnmanaged(ctx: Context, reason: string | null): void {
  if (reason === null) return;
  ctx.log.info(`${FINALIZE_UNIT} not started (${reason}): run \`bootcfs composefs-finalize-staged\` at shutdown`);
}

/** Pulls `image`, stages it, and reports; `switching` makes an existing deployment an error. */
async function pullAndStage(
  ctx: Context,
  host: Host,
  image: string,
  v: Record<string, unknown>,
  operation: "upgrade" | "switch",
  downloadOnly = false,
): Promise<void> {
  // As bootc, before the pull: the unit whose stop at shutdown finalizes what gets staged.
  const unmanaged = await startFinalizer(ctx);
  const repo = openRepository(ctx, { upgrade: true });
  try {
    const { result, imgref } = await pullTagged(ctx, repo, image, pullOptions(v));
    const r = await withContext(`staging ${image}`, () =>
      stageDeployment({
        root: ctx.globals.root,
        repo,
        manifestDigest: result.manifestDigest,
        imgref,
        host,
        switching: operation === "switch",
        downloadOnly,
        log: (m) => ctx.log.debug(m),
        unmergeable: (line) => ctx.log.error(line),
      }));
    if (!r.staged) {
      if (v.json) ctx.out.json({ staged: false, deployment: r.id, manifestDigest: result.manifestDigest });
      else ctx.out.line(`No changes in: ${image}`);
      return;
    }
    // As bootc after staging: what no deployment uses any more goes.
    const gc = await collectUnused(ctx, repo, host, { pruneRepo: true });
    for (const id of gc.stateDirs) ctx.log.info(`removed the state of deployment ${id}`, { "bootc.operation": "gc" });
    noteUnmanaged(ctx, unmanaged);
    ctx.log.info(`Staged deployment ${r.id}`, {
      "bootc.operation": operation,
      "bootc.deployment": r.id,
      "bootc.target_image": image,
    });
    if (v.json) {
      ctx.out.json({ staged: true, deployment: r.id, manifestDigest: result.manifestDigest, downloadOnly, gc });
      return;
    }
    ctx.out.line(`staged   ${r.id}`);
    ctx.out.line(`image    ${image} (${result.manifestDigest})`);
    ctx.out.line(`kernel   ${r.kernelShared ? "unchanged (shared with an existing deployment)" : "new"}`);
    ctx.out.line(`menu     ${r.menu}`);
    if (downloadOnly) ctx.out.line("download-only: finalized at shutdown only after `upgrade --from-downloaded`");
  } finally {
    repo.close();
  }
}

/** The image a booted system follows: the staged one's, else the booted one's. */
function followedImage(ref: ImageReference | null): string {
  if (ref === null) throw new Error("No image source specified: the booted deployment's origin names no image");
  return pullReference(ref);
}

/**
 * `upgrade --check`: what updating to `image` would fetch, against the booted deployment's
 * manifest, read from the image's source without pulling anything.
 */
async function checkUpdate(ctx: Context, host: Host, image: string, v: Record<string, unknown>): Promise<void> {
  const booted = requireBooted(host, ctx.globals.root);
  const repo = openRepository(ctx, { readOnly: true });
  let current: ImageInfo;
  try {
    current = readDeploymentImage(physicalRootOf(ctx.globals.root), booted.composefs.verity, repo);
  } finally {
    repo.close();
  }
  const remote = await withContext(`checking ${image} for updates`, async () => {
    const source = await openSource(splitImage(image).imgref, pullOptions(v));
    try {
      return await loadImage(source);
    } finally {
      source.close();
    }
  });
  const digest = remote.manifest.digest;
  if (digest === current.digest) {
    if (v.json) ctx.out.json({ update: false, image, manifestDigest: digest });
    else ctx.out.line(`No changes in: ${image}`);
    return;
  }
  const labels = remote.config?.labels ?? {};
  const version = remote.parsed.annotations?.[VERSION] ?? labels[VERSION] ?? labels.version;
  const diff = manifestDiff(current.layers, remote.parsed.layers);
  if (v.json) {
    ctx.out.json({ update: true, image, manifestDigest: digest, version: version ?? null, diff });
    return;
  }
  ctx.out.line(`Update available for: ${image}`);
  if (version !== undefined) ctx.out.line(`  Version: ${version}`);
  ctx.out.line(`  Digest: ${digest}`);
  for (const line of formatManifestDiff(diff)) ctx.out.line(line);
}

/** `--from-downloaded`: unlocks a download-only staged deployment, as bootc words it. */
async function fromDownloaded(ctx: Context, host: Host, json: boolean): Promise<void> {
  // As bootc: the unit first, so that the deployment unlocked below is finalized at shutdown.
  const unmanaged = host.status.staged?.downloadOnly ? await startFinalizer(ctx) : null;
  const id = releaseDownloaded(ctx.globals.root, host);
  noteUnmanaged(ctx, id === null ? null : unmanaged);
  if (json) {
    ctx.out.json({ staged: true, deployment: host.status.staged?.composefs.verity, downloadOnly: false });
  } else if (id === null) {
    ctx.out.line("Staged deployment is present and not in download only mode.");
    ctx.out.line("Use `bootcfs composefs-finalize-staged` at shutdown (bootc: `bootc update --apply`) to apply it.");
  } else {
    ctx.log.info(`Staged deployment ${id} is no longer download-only`, { "bootc.operation": "upgrade" });
    ctx.out.line(`staged   ${id} (no longer download-only: finalized at the next shutdown)`);
  }
}

const MODES = ["check", "download-only", "from-downloaded"];

/** `bootcfs upgrade`. */
export const upgradeCommand: CommandBody = {
  usage: "[--check | --download-only | --from-downloaded] [--tag TAG] [--tls-verify=false] [--authfile F] " +
    "[--platform P] [--json]",
  description: "Pulls the image the booted system follows (the staged deployment's, else the booted one's) and, " +
    "when its boot image differs from every deployment, stages it: state/deploy/<id>/ with the new /etc, " +
    "the kernel (shared with an existing deployment when unchanged), loader/entries.staged with the new entry and " +
    "the booted one as secondary, and /run/composefs/staged-deployment. The new entry's command line is the " +
    "booted entry's with composefs= replaced and the image's kargs.d changes applied. Local /etc changes that " +
    "could not be merged at finalization are listed and refused. `bootcfs composefs-finalize-staged` (run at " +
    "shutdown) makes the staged menu the boot menu. Then, as bootc, what no deployment uses any more goes: " +
    "kernel directories, state directories no entry names, localhost/bootc-* tags and the objects only they kept. " +
    "With --tag, follows another tag of the same image. --check only reads the image's manifest and prints what " +
    "an update would fetch against the booted deployment (ostree-ext's layer diff); --download-only stages a " +
    "deployment that shutdown leaves alone until `upgrade --from-downloaded`.",
  options: {
    check: { type: "boolean", help: "show whether an update is available, and its size; pull nothing" },
    "download-only": { type: "boolean", help: "stage, but do not finalize at shutdown" },
    "from-downloaded": { type: "boolean", help: "let shutdown finalize the download-only staged deployment" },
    tag: { type: "string", value: "TAG", help: "upgrade to TAG of the followed image" },
    ...REGISTRY_OPTIONS,
  },
  async run(ctx, args) {
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument '${args.positionals[0]}'`);
    const v = args.values;
    const modes = MODES.filter((m) => v[m] === true);
    if (modes.length > 1) throw new UsageError(`--${modes[0]} and --${modes[1]} exclude each other`);
    const tag = v.tag as string | undefined;
    if (v["from-downloaded"] && tag !== undefined) throw new UsageError("--from-downloaded takes no --tag");
    // A check only reads: it takes no lock.
    using _lock = v.check ? undefined : lockDeployments(physicalRootOf(ctx.globals.root));
    const host = readStatus(ctx);
    requireBooted(host, ctx.globals.root);
    if (v["from-downloaded"]) return await fromDownloaded(ctx, host, v.json === true);
    let image = followedImage(host.spec.image);
    if (tag !== undefined) image = withTag(image, tag);
    if (v.check) return await checkUpdate(ctx, host, image, v);
    await pullAndStage(ctx, host, image, v, "upgrade", v["download-only"] === true);
  },
};

const SWITCH_TRANSPORTS = ["registry", "oci", "oci-archive", "docker-archive", "containers-storage"];

/** `bootcfs switch`. */
export const switchCommand: CommandBody = {
  usage: "[--transport T] [--tls-verify=false] [--authfile F] [--platform P] [--json] TARGET",
  description: "Stages TARGET as the next deployment, as `upgrade` does, and makes it the image the system " +
    "follows from then on. TARGET is a registry name (or --transport oci|oci-archive|docker-archive|" +
    "containers-storage with a path or name, or a reference with its transport). A TARGET whose boot image equals " +
    "an existing deployment's is refused; the same image reference as now changes nothing.",
  options: {
    transport: {
      type: "string",
      value: "T",
      help: "registry (default), oci, oci-archive, docker-archive or containers-storage",
    },
    ...REGISTRY_OPTIONS,
  },
  async run(ctx, args) {
    if (args.positionals.length !== 1) {
      throw new UsageError(`expected TARGET, got ${args.positionals.length} argument(s)`);
    }
    const transport = (args.values.transport as string | undefined) ?? "registry";
    if (!SWITCH_TRANSPORTS.includes(transport)) {
      throw new UsageError(`--transport must be one of ${SWITCH_TRANSPORTS.join(", ")}, not '${transport}'`);
    }
    const target = args.positionals[0];
    const image = splitImage(transport === "registry" ? target : `${transport}:${target}`).imgref;
    using _lock = lockDeployments(physicalRootOf(ctx.globals.root));
    const host = readStatus(ctx);
    if (host.spec.image !== null && pullReference(host.spec.image) === image) {
      ctx.out.line("Image specification is unchanged.");
      return;
    }
    await pullAndStage(ctx, host, image, args.values, "switch");
  },
};
