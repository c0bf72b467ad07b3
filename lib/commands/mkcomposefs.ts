/**
 * `bootcfs mkcomposefs`: build a composefs EROFS image from a directory or a dumpfile, with the
 * options and output of C mkcomposefs 1.0.8 (test-rig.md §3).
 *
 * @module
 */
import type { Args, CommandBody } from "../cli/command.ts";
import { UsageError, withContext, withContextSync } from "../error/mod.ts";
import { fsverityDigest, toHex } from "../fsverity/digest.ts";
import { parseDumpfile, parseDumpfileStream } from "../dumpfile/mod.ts";
import { chooseVersion, type FormatVersion, writeImage } from "../erofs/mod.ts";
import { Directory } from "../tree/mod.ts";
import { treeFromDirectory } from "../tree/fromdir.ts";

function versionArg(v: unknown, name: string): FormatVersion | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !/^[0-2]$/.test(v)) throw new UsageError(`--${name} must be 0, 1 or 2, not '${v}'`);
  return Number(v) as FormatVersion;
}

/**
 * The (min, max) format versions from the options, as C resolves them: defaults 0 and 1; a lone
 * `--min-version N` also sets max to N, a lone `--max-version 0` makes both 0.
 */
export function versionRange(min?: FormatVersion, max?: FormatVersion): [FormatVersion, FormatVersion] {
  const lo = min ?? 0;
  const hi = max ?? (min !== undefined ? Math.max(min, 1) as FormatVersion : 1);
  if (lo > hi) throw new UsageError(`--min-version ${lo} is greater than --max-version ${hi}`);
  if (lo < 2 && hi === 2) throw new UsageError("version 2 (composefs-rs legacy) can only be used alone: 2..2");
  return [lo, hi];
}

/** Options that only a directory build knows (C applies them while reading the directory). */
const DIR_ONLY = ["digest-store", "skip-xattrs", "user-xattrs", "skip-devices"] as const;

async function readSource(source: string, v: Args["values"]): Promise<Directory> {
  if (v["from-file"]) {
    const bad = DIR_ONLY.find((o) => v[o] !== undefined && v[o] !== false);
    if (bad) throw new UsageError(`--${bad} needs a directory SOURCE, not --from-file`);
    // A dumpfile is metadata-sized: one read is cheaper than a stream of small async reads.
    const root = source === "-"
      ? await parseDumpfileStream(Deno.stdin.readable)
      : parseDumpfile(Deno.readFileSync(source));
    if (v["use-epoch"]) zeroMtimes(root);
    return root;
  }
  if (source === "-") throw new UsageError("SOURCE '-' (stdin) needs --from-file");
  return treeFromDirectory(source, {
    digestStore: v["digest-store"] as string | undefined,
    useEpoch: v["use-epoch"] === true,
    skipXattrs: v["skip-xattrs"] === true,
    userXattrs: v["user-xattrs"] === true,
    skipDevices: v["skip-devices"] === true,
  });
}

function zeroMtimes(root: Directory): void {
  const stack: Directory[] = [root];
  const seen = new Set<object>();
  while (stack.length > 0) {
    const d = stack.pop()!;
    d.stat.mtimeSec = d.stat.mtimeNsec = 0;
    for (const [, n] of d.entries()) {
      if (seen.has(n)) continue;
      seen.add(n);
      if (n instanceof Directory) stack.push(n);
      else n.stat.mtimeSec = n.stat.mtimeNsec = 0;
    }
  }
}

/** The `mkcomposefs` command. */
export const mkcomposefsCommand: CommandBody = {
  usage: "[--from-file] [--digest-store DIR] [--min-version N] [--max-version N] [--use-epoch] " +
    "[--print-digest] SOURCE IMAGE",
  description: "Writes the composefs EROFS image of SOURCE (a directory, or with --from-file a dumpfile; " +
    "'-' reads stdin) to IMAGE ('-' writes stdout). Versions 0 and 1 are byte-identical to C mkcomposefs " +
    "1.0.8: the version starts at --min-version and rises to --max-version only if the tree has a whiteout. " +
    "Version 2 is composefs-rs's legacy format.",
  options: {
    "from-file": { type: "boolean", help: "SOURCE is a composefs dumpfile" },
    "digest-store": { type: "string", value: "DIR", help: "copy files over 64 bytes into DIR/xx/yyyy…" },
    "min-version": { type: "string", value: "N", help: "lowest format version to write (default 0)" },
    "max-version": { type: "string", value: "N", help: "highest format version to write (default 1)" },
    "use-epoch": { type: "boolean", help: "set every mtime to 0" },
    "print-digest": { type: "boolean", help: "print the image's fs-verity sha256 digest" },
    "skip-xattrs": { type: "boolean", help: "directory SOURCE: store no xattrs" },
    "user-xattrs": { type: "boolean", help: "directory SOURCE: store only user.* xattrs" },
    "skip-devices": { type: "boolean", help: "directory SOURCE: leave out character and block devices" },
  },
  async run(ctx, args) {
    const [source, image, ...extra] = args.positionals;
    if (source === undefined || image === undefined) throw new UsageError("SOURCE and IMAGE are required");
    if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
    const v = args.values;
    const [min, max] = versionRange(
      versionArg(v["min-version"], "min-version"),
      versionArg(v["max-version"], "max-version"),
    );
    if (image === "-" && Deno.stdout.isTerminal()) throw new UsageError("refusing to write an image to a terminal");
    const root = await withContext(`reading ${source}`, () => readSource(source, v));
    const bytes = writeImage(root, { version: chooseVersion(root, min, max) });
    if (image === "-") ctx.out.write(bytes);
    else withContextSync(`writing ${image}`, () => Deno.writeFileSync(image, bytes));
    if (v["print-digest"]) ctx.out.line(toHex(fsverityDigest(bytes, "sha256")));
  },
};
