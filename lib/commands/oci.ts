/**
 * `bootcfs oci pull|images|inspect|tag|untag|compute-id|mount`: OCI images in a composefs
 * repository, as cfsctl's `oci` commands (oci-and-boot.md §3, §5).
 *
 * @module
 */
import { type Args, type Command, type CommandBody, type Context, repoPath } from "../cli/command.ts";
import { UsageError } from "../error/mod.ts";
import { type LocalFetch, pull, type PullOptions, type PullResult } from "../oci/pull.ts";
import { inspectImage, listImages, OciImage, tagImage, untagImage } from "../oci/store.ts";
import { effectiveFormats, type ErofsFormats, Repository } from "../repository/mod.ts";
import type { HashAlg } from "../fsverity/digest.ts";
import { mountComposefs } from "../mount/mod.ts";
import type { ImageResolver } from "./mount.ts";
import { platformOption } from "./options.ts";
import { openRepository, parseErofsFormats } from "./repo.ts";

const SOURCE_OPTIONS = {
  platform: { type: "string", value: "OS/ARCH[/VARIANT]", help: "platform to pick from an image index" },
  "tls-verify": { type: "string", value: "BOOL", help: "docker://: false allows plain HTTP registries" },
  authfile: { type: "string", value: "FILE", help: "docker://: registry credentials (auth.json)" },
  "local-fetch": {
    type: "string",
    value: "MODE",
    help: "containers-storage: auto (reflink/hardlink/copy), zerocopy, or disabled (stream the tar)",
  },
} as const;

function one(args: Args, names: string[]): string[] {
  if (args.positionals.length !== names.length) {
    throw new UsageError(`expected ${names.join(" ")}, got ${args.positionals.length} argument(s)`);
  }
  return args.positionals;
}

function sourceOptions(ctx: Context, args: Args): PullOptions {
  const v = args.values;
  const tls = v["tls-verify"] as string | undefined;
  if (tls !== undefined && tls !== "true" && tls !== "false") {
    throw new UsageError("--tls-verify must be true or false");
  }
  const lf = v["local-fetch"] as string | undefined;
  if (lf !== undefined && lf !== "auto" && lf !== "zerocopy" && lf !== "disabled") {
    throw new UsageError("--local-fetch must be auto, zerocopy or disabled");
  }
  const platform = platformOption(v.platform);
  return {
    platform,
    tlsVerify: tls === undefined ? undefined : tls === "true",
    authFile: v.authfile as string | undefined,
    localFetch: lf as LocalFetch | undefined,
    progress: ctx.progress,
    log: (m) => ctx.log.debug(m),
  };
}

function pullJson(r: PullResult, tag?: string): Record<string, unknown> {
  return { ...r, ...(tag !== undefined ? { tag } : {}) };
}

const pullCommand: Command = {
  name: "pull",
  summary: "import an image into the repository and build its composefs image",
  usage: "SOURCE [--name TAG]",
  description: "Imports SOURCE (oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME], " +
    "containers-storage:NAME, docker://NAME) into the repository: every layer verified (blob digest and size, and " +
    "the diff_id of the uncompressed tar), stored as a layer splitstream, the config and manifest recorded, the " +
    "EROFS image(s) generated, and the image tagged TAG (default: SOURCE) last. Already stored layers are not " +
    "fetched again; pulling a complete image again only tags it.",
  options: {
    name: { type: "string", value: "TAG", help: "tag for the image (default: SOURCE)" },
    json: { type: "boolean", help: "print the result as JSON" },
    ...SOURCE_OPTIONS,
  },
  async run(ctx, args) {
    const [source] = one(args, ["SOURCE"]);
    const tag = (args.values.name as string | undefined) ?? source;
    const repo = openRepository(ctx, { upgrade: true });
    try {
      const r = await pull(repo, source, { ...sourceOptions(ctx, args), tag });
      if (r.upgrade.upgraded) {
        ctx.log.info(`upgraded ${r.upgrade.upgraded} older image(s): ${r.upgrade.upgradedTags.join(", ")}`);
      }
      if (args.values.json) ctx.out.json(pullJson(r, tag));
      else {
        ctx.out.line(`manifest ${r.manifestDigest}`);
        ctx.out.line(`config   ${r.configDigest}`);
        if (r.imageId) ctx.out.line(`image    ${r.imageId}`);
        ctx.out.line(
          r.alreadyPresent ? `already present, tagged ${tag}` : `${r.stats.layers} layer(s) imported, ` +
            `${r.stats.layersAlreadyPresent} already present; tagged ${tag}`,
        );
      }
    } finally {
      repo.close();
    }
  },
};

const imagesCommand: Command = {
  name: "images",
  summary: "list tagged images",
  options: { json: { type: "boolean", help: "print the list as JSON" } },
  run(ctx, args) {
    one(args, []);
    const repo = openRepository(ctx, { readOnly: true });
    try {
      const list = listImages(
        repo,
        effectiveFormats(repo.meta).default,
        (name, e) => ctx.log.warn(`cannot open image ${name}: ${(e as Error).message}`),
      );
      if (args.values.json) ctx.out.json(list);
      else {
        ctx.out.table(
          ["NAME", "MANIFEST", "PLATFORM", "LAYERS", "IMAGE ID"],
          list.map((i) => [
            i.name,
            i.manifestDigest.slice(0, 19),
            i.isContainer ? `${i.os}/${i.architecture}` : "(artifact)",
            String(i.layerCount),
            i.imageId ? i.imageId.slice(0, 16) : "-",
          ]),
        );
      }
    } finally {
      repo.close();
    }
  },
};

const inspectCommand: Command = {
  name: "inspect",
  summary: "show an image's manifest, config and composefs ids",
  usage: "NAME|@sha256:DIGEST [--config|--manifest]",
  description: "Prints JSON with the manifest, config, layer splitstreams and EROFS image id; --config or " +
    "--manifest prints that document's bytes exactly as stored.",
  options: {
    config: { type: "boolean", help: "print the raw config" },
    manifest: { type: "boolean", help: "print the raw manifest" },
  },
  run(ctx, args) {
    const [spec] = one(args, ["NAME"]);
    if (args.values.config && args.values.manifest) throw new UsageError("--config and --manifest exclude each other");
    const repo = openRepository(ctx, { readOnly: true });
    try {
      const img = OciImage.resolve(repo, spec);
      if (args.values.config) ctx.out.write(img.configBytes);
      else if (args.values.manifest) ctx.out.write(img.manifestBytes);
      else ctx.out.json(inspectImage(img, effectiveFormats(repo.meta).default));
    } finally {
      repo.close();
    }
  },
};

const tagCommand: Command = {
  name: "tag",
  summary: "give an image another name",
  usage: "MANIFEST-DIGEST|NAME NEWNAME",
  run(ctx, args) {
    const [spec, name] = one(args, ["IMAGE", "NEWNAME"]);
    const repo = openRepository(ctx);
    try {
      const img = OciImage.resolve(repo, spec);
      tagImage(repo, img.manifestDigest, name);
    } finally {
      repo.close();
    }
  },
};

const untagCommand: Command = {
  name: "untag",
  summary: "remove a tag (the data goes at the next gc)",
  usage: "NAME",
  run(ctx, args) {
    const [name] = one(args, ["NAME"]);
    const repo = openRepository(ctx);
    try {
      untagImage(repo, name);
    } finally {
      repo.close();
    }
  },
};

/** Hash and formats of the repository `--repo` names when it opens, else bootcfs's defaults. */
function targetSettings(ctx: Context): { alg: HashAlg; formats: ErofsFormats } {
  try {
    const repo = Repository.open(repoPath(ctx.globals), { readOnly: true });
    try {
      return { alg: repo.alg, formats: effectiveFormats(repo.meta) };
    } finally {
      repo.close();
    }
  } catch {
    return { alg: "sha512", formats: { default: 1, extra: [] } };
  }
}

const computeIdCommand: Command = {
  name: "compute-id",
  summary: "print the composefs image id of an image without keeping it",
  usage: "SOURCE [--hash sha512|sha256] [--erofs-format N]",
  description: "Imports SOURCE into a temporary insecure repository under $TMPDIR (removed afterwards) and prints " +
    "the id of its EROFS image. The hash and format are those of the repository (--repo) when it exists, else " +
    "sha512 and V1, unless given.",
  options: {
    hash: { type: "string", value: "ALG", help: "sha512 or sha256" },
    "erofs-format": { type: "string", value: "N", help: "EROFS format: 0, 1 or 2" },
    json: { type: "boolean", help: "print JSON" },
    ...SOURCE_OPTIONS,
  },
  async run(ctx, args) {
    const [source] = one(args, ["SOURCE"]);
    const settings = targetSettings(ctx);
    const hash = args.values.hash as string | undefined;
    if (hash !== undefined && hash !== "sha256" && hash !== "sha512") throw new UsageError("--hash: sha256 or sha512");
    const alg = (hash as HashAlg | undefined) ?? settings.alg;
    const f = args.values["erofs-format"] as string | undefined;
    const formats = f !== undefined ? parseErofsFormats(f) : settings.formats;
    const dir = await Deno.makeTempDir({ prefix: "bootcfs-compute-id-" });
    try {
      const { repo } = Repository.init(`${dir}/repo`, { alg, formats, insecure: true });
      try {
        const r = await pull(repo, source, sourceOptions(ctx, args));
        if (!r.imageId) throw new Error(`${source} is an artifact, not a container image`);
        if (args.values.json) ctx.out.json({ imageId: r.imageId, manifestDigest: r.manifestDigest, alg, formats });
        else ctx.out.line(r.imageId);
      } finally {
        repo.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
};

/** Image names of the repository for `mount`: a tag or `@sha256:…` → its default-format EROFS image. */
export const ociImageResolver: ImageResolver = (name, path) => {
  const repo = Repository.open(path, { readOnly: true });
  try {
    const img = OciImage.resolve(repo, name);
    const format = effectiveFormats(repo.meta).default;
    const id = img.imageRef(format);
    if (!id) throw new Error(`image ${name} has no V${format} composefs image (pull it again to generate one)`);
    return { image: `${path}/images/${id}`, objectDirs: [`${path}/objects`], expectedDigest: id };
  } finally {
    repo.close();
  }
};

const mountCommand: Command = {
  name: "mount",
  summary: "mount an image of the repository on a directory",
  usage: "NAME|@sha256:DIGEST MOUNTPOINT",
  description: "Mounts the default-format composefs image of tag NAME (or manifest @sha256:…) read-only on " +
    "MOUNTPOINT, with the repository's objects as data layers. fs-verity is required unless --insecure.",
  async run(ctx, args) {
    const [name, target] = one(args, ["NAME", "MOUNTPOINT"]);
    // Not through `runMount`: tags may contain `/`, which it takes for a path.
    const r = await ociImageResolver(name, repoPath(ctx.globals));
    if (ctx.globals.insecure) ctx.log.warn(`mounting ${name} without fs-verity (--insecure)`);
    const m = mountComposefs(target, {
      image: r.image,
      objectDirs: r.objectDirs,
      insecure: ctx.globals.insecure,
      expectedDigest: r.expectedDigest,
    });
    ctx.log.debug(`mounted ${r.image} on ${m.target} (verity ${m.verity ? "required" : "off"})`);
  },
};

/** The `oci` command group. */
export const ociCommand: CommandBody = {
  subcommands: [pullCommand, imagesCommand, inspectCommand, tagCommand, untagCommand, computeIdCommand, mountCommand],
};
