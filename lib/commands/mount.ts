/**
 * `bootcfs mount` and `bootcfs umount`: mount a composefs image (EROFS + overlayfs over the object
 * store) on a directory and take it down again, like C `mount.composefs`.
 *
 * @module
 */
import { type CommandBody, type Context, type GlobalOptions, repoPath } from "../cli/command.ts";
import { UsageError } from "../error/mod.ts";
import { mountComposefs, unmountComposefs } from "../mount/mod.ts";

/** An image to mount and where its objects are. */
export interface ResolvedImage {
  /** The EROFS image file. */
  image: string;
  /** Object directories for the overlay's data-only layers. */
  objectDirs: string[];
  /** The image's fs-verity digest when the name implies one (e.g. `images/<hex>`). */
  expectedDigest?: string;
}

/**
 * Turns an IMAGE argument that is not a file path into an image inside the repository `repo`
 * (e.g. `images/refs/NAME` or `images/<hex>`).
 */
export type ImageResolver = (name: string, repo: string) => ResolvedImage | Promise<ResolvedImage>;

/** The resolver until repositories can look images up: names are refused with a hint. */
const pathsOnly: ImageResolver = (name) => {
  throw new UsageError(
    `image '${name}' is not a file (looking images up by name in a repository is not supported yet)`,
  );
};

/** True if `arg` is meant as a path: it contains a slash or names an existing file. */
function isPath(arg: string): boolean {
  if (arg.includes("/")) return true;
  try {
    Deno.statSync(arg);
    return true;
  } catch {
    return false;
  }
}

/** Object directories from `--basedir` values, each of which may hold several `:`-separated paths. */
function basedirs(values: string[]): string[] {
  return values.flatMap((v) => v.split(":")).filter((d) => d !== "");
}

/** What `bootcfs mount` does, without the command-line parsing. */
export async function runMount(
  g: GlobalOptions,
  arg: {
    image: string;
    target: string;
    basedir: string[];
    digest?: string;
    upper?: { upperdir: string; workdir: string };
  },
  resolve: ImageResolver,
  log: Context["log"],
): Promise<void> {
  const repo = repoPath(g);
  const dirs = basedirs(arg.basedir);
  const resolved: ResolvedImage = isPath(arg.image)
    ? { image: arg.image, objectDirs: [`${repo}/objects`] }
    : await resolve(arg.image, repo);
  const objectDirs = dirs.length > 0 ? dirs : resolved.objectDirs;
  if (g.insecure) log.warn(`mounting ${arg.image} without fs-verity (--insecure)`);
  const r = mountComposefs(arg.target, {
    image: resolved.image,
    objectDirs,
    insecure: g.insecure,
    expectedDigest: arg.digest ?? resolved.expectedDigest,
    upper: arg.upper,
  });
  log.debug(
    `mounted ${resolved.image} on ${r.target}: objects ${objectDirs.join(":")}, ` +
      `verity ${r.verity ? "required" : "off"}, EROFS layer via ${r.erofsLayer}`,
  );
}

/** The `mount` command with `resolve` looking up image names (the repository plugs its lookup in here). */
export function mountCommandWith(resolve: ImageResolver): CommandBody {
  return {
    usage: "IMAGE MOUNTPOINT",
    description: "Mounts the composefs image IMAGE (a file) read-only on MOUNTPOINT: the image as a file-backed " +
      "EROFS, under an overlayfs whose data layers are the object directories (--basedir, default: the " +
      "repository's objects/). fs-verity is required on the image and enforced on every object unless " +
      "--insecure; a kernel or filesystem without fs-verity is refused before mounting. With --upperdir and " +
      "--workdir the mount is writable.",
    options: {
      basedir: {
        type: "string",
        multiple: true,
        value: "DIR",
        help: "object directory; repeat or separate with ':' for several (default: REPO/objects)",
      },
      digest: {
        type: "string",
        value: "HEX",
        help: "the image's expected fs-verity digest (computed in userspace when the kernel has none)",
      },
      upperdir: { type: "string", value: "DIR", help: "writable upper directory (needs --workdir)" },
      workdir: { type: "string", value: "DIR", help: "overlay work directory on the upper directory's filesystem" },
    },
    async run(ctx, args) {
      const [image, target, ...extra] = args.positionals;
      if (!image || !target) throw new UsageError("IMAGE and MOUNTPOINT are required");
      if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
      const upperdir = args.values.upperdir as string | undefined;
      const workdir = args.values.workdir as string | undefined;
      if (!upperdir !== !workdir) throw new UsageError("--upperdir and --workdir go together");
      const digest = args.values.digest as string | undefined;
      if (digest !== undefined && !/^([0-9a-fA-F]{64}|[0-9a-fA-F]{128})$/.test(digest)) {
        throw new UsageError("--digest must be 64 (sha256) or 128 (sha512) hex digits");
      }
      await runMount(
        ctx.globals,
        {
          image,
          target,
          basedir: (args.values.basedir as string[] | undefined) ?? [],
          digest,
          upper: upperdir && workdir ? { upperdir, workdir } : undefined,
        },
        resolve,
        ctx.log,
      );
    },
  };
}

/** The `mount` command. */
export const mountCommand: CommandBody = mountCommandWith(pathsOnly);

/** The `umount` command. */
export const umountCommand: CommandBody = {
  usage: "MOUNTPOINT",
  description: "Unmounts the composefs mount at MOUNTPOINT. Refuses a path that is not an overlay mount point.",
  options: { lazy: { type: "boolean", help: "detach now even if busy; cleaned up when no longer used" } },
  run(_ctx, args) {
    const [target, ...extra] = args.positionals;
    if (!target) throw new UsageError("MOUNTPOINT is required");
    if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
    unmountComposefs(target, { lazy: args.values.lazy === true });
  },
};
