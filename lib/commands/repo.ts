/**
 * `bootcfs repo init|fsck|gc`: create, check and garbage-collect a composefs repository shared
 * with composefs-rs / cfsctl.
 *
 * @module
 */
import { type Command, type CommandBody, type Context, repoPath } from "../cli/command.ts";
import { UsageError, withContextSync } from "../error/mod.ts";
import { imageObjects } from "../erofs/mod.ts";
import { type HashAlg, toHex } from "../fsverity/digest.ts";
import {
  type ErofsFormat,
  type ErofsFormats,
  fsck,
  gc,
  type ImageObjects,
  type ObjectId,
  Repository,
  upgradeLegacyLayout,
} from "../repository/mod.ts";

/**
 * The objects an EROFS image refers to (metacopy and redirect xattrs of its regular files), read
 * with lib/erofs; GC and fsck take it as their {@link ImageObjects}.
 */
export const erofsImageObjects: ImageObjects = (image: Uint8Array, alg: HashAlg): ObjectId[] =>
  imageObjects(image).map((id) => {
    if (id.alg !== alg) throw new Error(`image refers to a ${id.alg} object in a ${alg} repository`);
    return toHex(id.digest) as ObjectId;
  });

/** Opens the repository of `--repo` (or the default), logging its mode; refuses nothing it can read. */
export function openRepository(ctx: Context, opts: { readOnly?: boolean; upgrade?: boolean } = {}): Repository {
  const path = repoPath(ctx.globals);
  if (opts.upgrade) {
    const u = upgradeLegacyLayout(path);
    if (u.upgraded) {
      ctx.log.info(`${path}: wrote meta.json for a repository from before composefs-rs 0.7 (${u.alg}, EROFS V2)`);
    }
  }
  const repo = withContextSync(
    `opening repository ${path}`,
    () => Repository.open(path, { readOnly: opts.readOnly, log: (m) => ctx.log.debug(m) }),
  );
  if (repo.access.mode === "read-only" && !opts.readOnly) ctx.log.warn(`${path}: ${repo.access.reason}; read-only`);
  return repo;
}

/** Whether images of the repository mount without fs-verity: it was made insecure, or `--insecure`. */
export function mountsInsecure(ctx: Context): boolean {
  const repo = openRepository(ctx, { readOnly: true });
  try {
    return repo.insecure || ctx.globals.insecure;
  } finally {
    repo.close();
  }
}

/** `--erofs-format` value: `1`, `2`, `0`, or a default with extras such as `1,2`. */
export function parseErofsFormats(v: string): ErofsFormats {
  const parts = v.split(",").map((p) => p.trim());
  const nums = parts.map((p) => {
    if (p !== "0" && p !== "1" && p !== "2") throw new UsageError(`--erofs-format: '${p}' is not 0, 1 or 2`);
    return Number(p) as ErofsFormat;
  });
  return { default: nums[0], extra: [...new Set(nums.slice(1))].filter((n) => n !== nums[0]).sort() };
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024, i = 0;
  while (v >= 1024 && i < units.length - 1) v /= 1024, i++;
  return `${v.toFixed(1)} ${units[i]}`;
}

const initCommand: Command = {
  name: "init",
  summary: "create a repository (meta.json as cfsctl init writes it)",
  usage: "[--hash sha512|sha256] [--erofs-format 1|2|1,2] [--insecure] [DIR]",
  description: "Creates DIR (default: --repo, else ROOT/sysroot/composefs) with a meta.json. Without --insecure " +
    "fs-verity is enabled on meta.json, which makes the repository secure; that needs a filesystem with fs-verity. " +
    "Running it again with the same settings does nothing.",
  options: {
    hash: { type: "string", value: "ALG", default: "sha512", help: "fs-verity hash: sha512 or sha256" },
    "erofs-format": { type: "string", value: "N[,N]", default: "1", help: "EROFS image format(s): 1, 2 or 1,2" },
  },
  run(ctx, args) {
    const alg = args.values.hash as string;
    if (alg !== "sha256" && alg !== "sha512") throw new UsageError(`--hash must be sha256 or sha512, not '${alg}'`);
    if (args.positionals.length > 1) throw new UsageError("at most one DIR");
    const path = args.positionals[0] ?? repoPath(ctx.globals);
    const formats = parseErofsFormats(args.values["erofs-format"] as string);
    const { repo, created } = Repository.init(path, {
      alg,
      formats,
      insecure: ctx.globals.insecure,
      log: (m) => ctx.log.debug(m),
    });
    try {
      if (ctx.globals.insecure) ctx.log.info(`${path}: insecure repository (no fs-verity on meta.json)`);
      ctx.out.line(created ? `initialized ${path}` : `${path} is already initialized with these settings`);
    } finally {
      repo.close();
    }
  },
};

const fsckCommand: Command = {
  name: "fsck",
  summary: "check every object, link, ref and stream of the repository",
  usage: "[--repair]",
  description: "Re-hashes every object and checks that every link, ref, stream and image refers to objects that " +
    "exist. Prints each problem with its path and exits 1 if there was any. --repair removes damaged objects, " +
    "left-over temporary files, and links or refs that lead to missing data.",
  options: {
    repair: { type: "boolean", help: "remove what is damaged" },
    json: { type: "boolean", help: "print the result as JSON" },
  },
  run(ctx, args) {
    const repair = args.values.repair === true;
    const repo = openRepository(ctx, { readOnly: !repair });
    try {
      const r = fsck(repo, { repair, imageObjects: erofsImageObjects });
      if (args.values.json) ctx.out.json(r);
      else {
        for (const p of r.problems) ctx.out.line(`${p.path}: ${p.problem}${p.repaired ? " (removed)" : ""}`);
        ctx.out.line(
          `checked ${r.objects} objects, ${r.streams} streams, ${r.images} images, ${r.refs} refs: ` +
            (r.problems.length ? `${r.problems.length} problem(s)` : "no problems"),
        );
      }
      return r.problems.length ? 1 : 0;
    } finally {
      repo.close();
    }
  },
};

const gcCommand: Command = {
  name: "gc",
  summary: "remove objects no ref reaches, then dangling links",
  usage: "[--dry-run] [--root NAME…] [--no-wait]",
  description: "Keeps everything reachable from images/refs and streams/refs (and the top-level images/ or " +
    "streams/ entries named with --root), removes every other object, then the links left dangling. Takes the " +
    "repository's exclusive lock, so it waits for (or with --no-wait, fails on) other bootcfs or cfsctl users.",
  options: {
    "dry-run": { type: "boolean", help: "only count what would be removed" },
    root: { type: "string", multiple: true, value: "NAME", help: "extra top-level image or stream to keep" },
    "no-wait": { type: "boolean", help: "fail instead of waiting when the repository is in use" },
    json: { type: "boolean", help: "print the result as JSON" },
  },
  async run(ctx, args) {
    const dryRun = args.values["dry-run"] === true;
    const repo = openRepository(ctx);
    try {
      const r = await gc(repo, {
        dryRun,
        roots: (args.values.root as string[] | undefined) ?? [],
        imageObjects: erofsImageObjects,
        lockWaitMs: args.values["no-wait"] ? 0 : Infinity,
        onWait: () => ctx.log.info(`waiting for other users of ${repo.path} to finish`),
      });
      if (args.values.json) ctx.out.json({ dryRun, ...r });
      else {
        const verb = dryRun ? "would remove" : "removed";
        ctx.out.line(
          `${verb} ${r.objectsRemoved} objects (${bytes(r.bytesFreed)}), ${r.imagesPruned} images, ` +
            `${r.streamsPruned} streams; ${r.liveObjects} objects live`,
        );
      }
    } finally {
      repo.close();
    }
  },
};

/** The `repo` command group. */
export const repoCommand: CommandBody = {
  subcommands: [initCommand, fsckCommand, gcCommand],
};
