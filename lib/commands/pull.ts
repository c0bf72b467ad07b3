/**
 * `bootcfs pull IMAGE [--unified]` (issue 6, bootc-layout.md §3 pull, §5, §6): an image into the
 * composefs repository, either straight from its source (`pull()` of lib/oci; registries through
 * the native client) or, with `--unified`, first into bootcfs's own containers-storage by a
 * transient podman service and then imported from there without copying file data. Either way the
 * manifest is tagged `localhost/bootc-<manifest digest>` (bootc's GC-root tag) once everything is
 * stored, and two journal records with the pull message id are logged.
 *
 * @module
 */
import type { CommandBody, Context } from "../cli/command.ts";
import type { ProgressReporter, ProgressTask } from "../cli/progress.ts";
import { UsageError, withContext } from "../error/mod.ts";
import { pull, type PullResult } from "../oci/pull.ts";
import { tagImage } from "../oci/store.ts";
import { pullIntoStore, storeReference, unifiedStore } from "../podman/unified.ts";
import { platformOption } from "./options.ts";
import { openRepository } from "./repo.ts";
import { migrateBoot } from "./boot_migration.ts";
import type { Repository } from "../repository/mod.ts";

/** message_id of bootc's composefs pull records (bootc-layout.md §6). */
export const PULL_MESSAGE_ID = "4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8";

const TRANSPORTS = ["oci:", "oci-archive:", "docker-archive:", "containers-storage:", "docker://"];

/** `IMAGE` with its transport; a bare name is a registry reference, as for bootc. */
export function splitImage(image: string): { imgref: string; transport: string; name: string } {
  const t = TRANSPORTS.find((p) => image.startsWith(p));
  if (!t) return { imgref: `docker://${image}`, transport: "registry", name: image };
  const name = image.slice(t.length);
  return { imgref: image, transport: t === "docker://" ? "registry" : t.slice(0, -1), name };
}

/** bootc's GC-root tag for a manifest. */
export function bootcTag(manifestDigest: string): string {
  return `localhost/bootc-${manifestDigest}`;
}

/**
 * A reporter that adds a `total` task summing every byte task's total and progress, so a terminal
 * shows one bar per blob plus the whole pull.
 */
export function withTotal(inner: ProgressReporter): ProgressReporter & { finish(): void } {
  let total: ProgressTask | undefined;
  let sum = 0;
  return {
    task(label, opts) {
      const t = inner.task(label, opts);
      if (opts?.unit !== "bytes") return t;
      total ??= inner.task("total", { unit: "bytes", total: 0 });
      const grand = total;
      let known = opts.total ?? 0;
      let done = 0;
      sum += known;
      grand.setTotal(sum);
      return {
        advance(n) {
          done += n;
          grand.advance(n);
          t.advance(n);
        },
        set(v) {
          grand.advance(v - done);
          done = v;
          t.set(v);
        },
        setTotal(v) {
          sum += v - known;
          known = v;
          grand.setTotal(sum);
          t.setTotal(v);
        },
        done(note) {
          t.done(note);
        },
      };
    },
    finish() {
      total?.done();
    },
  };
}

function boolOption(v: unknown, name: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (v === "true" || v === "false") return v === "true";
  throw new UsageError(`--${name} must be true or false`);
}

/** The JSON form of a pull's result. */
function resultJson(r: PullResult, tag: string, unified: boolean): Record<string, unknown> {
  return {
    manifestDigest: r.manifestDigest,
    manifestVerity: r.manifestVerity,
    configDigest: r.configDigest,
    configVerity: r.configVerity,
    imageId: r.imageId,
    tag,
    unified,
    alreadyPresent: r.alreadyPresent,
    layers: r.layers,
    stats: r.stats,
  };
}

/** How {@link pullTagged} pulls. */
export interface PullImageOptions {
  unified?: boolean;
  zeroCopy?: boolean;
  tlsVerify?: boolean;
  authFile?: string;
  platform?: ReturnType<typeof platformOption>;
}

/** The registry options a pulling command takes (`--tls-verify`, `--authfile`, `--platform`). */
export function pullOptions(v: Record<string, unknown>): PullImageOptions {
  return {
    tlsVerify: boolOption(v["tls-verify"], "tls-verify"),
    authFile: v.authfile as string | undefined,
    platform: platformOption(v.platform),
  };
}

/** `image` split into its transport and name; usage errors for options that do not fit it. */
function checkedImage(image: string, o: PullImageOptions): ReturnType<typeof splitImage> {
  const split = splitImage(image);
  if (o.unified && split.transport !== "registry") {
    throw new UsageError(`--unified pulls from a registry; ${image} is a ${split.transport} reference`);
  }
  if (o.zeroCopy && !o.unified && split.transport !== "containers-storage") {
    throw new UsageError("--zero-copy needs --unified or a containers-storage: source");
  }
  return split;
}

/**
 * Pulls `image` into `repo` (through bootcfs's containers-storage with `unified`) and tags it
 * with bootc's GC-root tag once everything is stored, logging bootc's two pull records.
 */
export async function pullTagged(
  ctx: Context,
  repo: Repository,
  image: string,
  o: PullImageOptions,
): Promise<{ result: PullResult; tag: string; imgref: string }> {
  const { imgref, transport, name } = checkedImage(image, o);
  ctx.log.info(`Pulling composefs image ${image}`, {
    message_id: PULL_MESSAGE_ID,
    "bootc.operation": "pull",
    "bootc.source_image": name,
    "bootc.transport": transport,
    "bootc.allow_missing_fsverity": ctx.globals.insecure,
    "bootc.unified_storage": o.unified === true,
  });
  const progress = withTotal(ctx.progress);
  const { tlsVerify, authFile, platform } = o;
  let source = imgref;
  if (o.unified) {
    const store = unifiedStore(ctx.globals.root);
    const id = await withContext(
      `pulling ${name} into ${store.root}`,
      () => pullIntoStore(store, name, { tlsVerify, authFile, arch: platform?.architecture, progress }),
    );
    source = storeReference(store, id);
  }
  const result = await pull(repo, source, {
    platform,
    tlsVerify,
    authFile,
    localFetch: o.zeroCopy ? "zerocopy" : "auto",
    progress,
    log: (m) => ctx.log.debug(m),
  });
  // The GC root comes last: a failed pull leaves nothing tagged.
  const tag = bootcTag(result.manifestDigest);
  tagImage(repo, result.manifestDigest, tag);
  progress.finish();
  ctx.log.info("Pulled image into composefs repository", {
    message_id: PULL_MESSAGE_ID,
    "bootc.manifest_digest": result.manifestDigest,
    "bootc.manifest_verity": result.manifestVerity,
    "bootc.config_digest": result.configDigest,
    "bootc.config_verity": result.configVerity,
    "bootc.tag": tag,
  });
  return { result, tag, imgref };
}

async function runPull(ctx: Context, image: string, v: Record<string, unknown>): Promise<void> {
  const unified = v.unified === true;
  const opts = { ...pullOptions(v), unified, zeroCopy: v["zero-copy"] === true };
  checkedImage(image, opts);
  migrateBoot(ctx);
  const repo = openRepository(ctx, { upgrade: true });
  try {
    const { result: r, tag } = await pullTagged(ctx, repo, image, opts);
    if (v.json) {
      ctx.out.json(resultJson(r, tag, unified));
      return;
    }
    ctx.out.line(`manifest ${r.manifestDigest}  verity ${r.manifestVerity}`);
    ctx.out.line(`config   ${r.configDigest}  verity ${r.configVerity}`);
    if (r.imageId) ctx.out.line(`image    ${r.imageId}`);
    ctx.out.line(
      r.alreadyPresent
        ? `already present; tagged ${tag}`
        : `${r.stats.layers} layer(s) imported, ${r.stats.layersAlreadyPresent} already present; tagged ${tag}`,
    );
  } finally {
    repo.close();
  }
}

/** `bootcfs pull`. */
export const pullCommand: CommandBody = {
  usage: "IMAGE [--unified] [--tls-verify=false] [--authfile F] [--platform P] [--zero-copy] [--json]",
  description: "Pulls IMAGE (a registry name, docker://NAME, oci:DIR, oci-archive:FILE, docker-archive:FILE or " +
    "containers-storage:NAME) into the repository, verifying every blob, and tags it localhost/bootc-<manifest " +
    "digest>. First, boot artifacts that bootc older than 1.14 named without the bootc_composefs- prefix are " +
    "renamed and the boot menus that name them rewritten, and a repository in an older format is upgraded. With --unified the image is first pulled by a transient podman service into ROOT/sysroot/composefs/" +
    "bootc/storage (the service is always stopped) and then imported from there sharing file data (reflinks or " +
    "hardlinks; --zero-copy refuses to copy). Prints the manifest and config digests and verities and the image id.",
  options: {
    unified: { type: "boolean", help: "pull through bootcfs's own containers-storage with podman" },
    "tls-verify": { type: "string", value: "BOOL", help: "false allows plain HTTP registries" },
    authfile: { type: "string", value: "FILE", help: "registry credentials (auth.json)" },
    platform: { type: "string", value: "OS/ARCH[/VARIANT]", help: "platform to pick from an image index" },
    "zero-copy": { type: "boolean", help: "fail unless the file data can be reflinked or hardlinked" },
    json: { type: "boolean", help: "print the result as JSON" },
  },
  async run(ctx, args) {
    if (args.positionals.length !== 1) {
      throw new UsageError(`expected IMAGE, got ${args.positionals.length} argument(s)`);
    }
    await runPull(ctx, args.positionals[0], args.values);
  },
};
