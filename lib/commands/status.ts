/**
 * `bootcfs status [--format humanreadable|yaml|json] [--json] [--booted]` (bootc-layout.md §3.10):
 * the deployments of the system at `--root` as bootc reports them — staged, booted, rollback and
 * others — read from the boot menus, the deployments' origins and the repository. Before reading,
 * legacy boot artifacts get the `bootc_composefs-` prefix (the migration that runs before every
 * pull; a no-op on an up-to-date system, logged when it does something): the only write status
 * makes. bootc also back-fills a UKI deployment's missing `[boot] digest` from status; bootcfs
 * does not (design: status writes only to migrate), so such a deployment shows `bootDigest: null`.
 *
 * @module
 */
import { type CommandBody, type Context, repoPath } from "../cli/command.ts";
import { UsageError } from "../error/mod.ts";
import { type Host, onlyBooted } from "../deploy/status.ts";
import { canonicalJson, formatHuman, toYaml } from "../deploy/status_output.ts";
import { readHostStatus } from "../deploy/status_read.ts";
import { openRepository } from "./repo.ts";
import { migrateBoot } from "./boot_migration.ts";

/** Output forms of `status`, as bootc names them. */
export type StatusFormat = "humanreadable" | "yaml" | "json";

const FORMATS: StatusFormat[] = ["humanreadable", "yaml", "json"];

/** `--format`, `--json` and the terminal decide the form: human on a terminal, else YAML, as bootc. */
export function statusFormat(values: Record<string, unknown>, stdoutIsTerminal: boolean): StatusFormat {
  const f = values.format as string | undefined;
  if (f !== undefined && !FORMATS.includes(f as StatusFormat)) {
    throw new UsageError(`--format must be one of ${FORMATS.join(", ")}, not '${f}'`);
  }
  if (f !== undefined && values.json && f !== "json") throw new UsageError("--json and --format exclude each other");
  const v = values["format-version"] as string | undefined;
  // bootc: both 0 and 1 mean v1, the only version there is.
  if (v !== undefined && v !== "0" && v !== "1") throw new UsageError(`unsupported --format-version '${v}'`);
  if (f !== undefined) return f as StatusFormat;
  if (values.json) return "json";
  return stdoutIsTerminal ? "humanreadable" : "yaml";
}

/** The text of `host` in `format`. */
export function renderStatus(host: Host, format: StatusFormat, opts: { verbose: boolean; root: string }): string {
  if (format === "json") return canonicalJson(host) + "\n";
  if (format === "yaml") return toYaml(host);
  return formatHuman(host, opts);
}

/** The status of the system at `--root`, read as `status` reads it (after the prefix migration). */
export function readStatus(ctx: Context): Host {
  migrateBoot(ctx);
  return readHostStatus({
    root: ctx.globals.root,
    repoPath: repoPath(ctx.globals),
    openRepository: () => openRepository(ctx, { readOnly: true }),
    warn: (message, fields) => ctx.log.warn(message, fields),
  });
}

/** `bootcfs status`. */
export const statusCommand: CommandBody = {
  usage: "[--format humanreadable|yaml|json] [--json] [--booted]",
  description: "Shows the deployments of the system at --root (default /): the staged, booted and rollback ones " +
    "and any others in the boot menu, each with its image reference, manifest digest, architecture, version, " +
    "composefs verity and boot type. The boot menus are the source of truth; a menu entry whose deployment has no " +
    "origin is skipped with a warning. A root is booted when it is a composefs mount (/, or --root DIR with a " +
    "deployment mounted at DIR as the initramfs mounts it); on any other root nothing is booted, and every " +
    "deployment in the menu is listed as another deployment, in menu order. JSON is RFC 8785 canonical. Legacy " +
    "boot artifacts are first renamed with the bootc_composefs- prefix, as before a pull.",
  options: {
    format: {
      type: "string",
      value: "FORMAT",
      help: "humanreadable, yaml or json (default: human on a terminal, else yaml)",
    },
    json: { type: "boolean", help: "same as --format json" },
    "format-version": { type: "string", value: "N", help: "0 or 1 (both mean v1)" },
    booted: { type: "boolean", help: "show only the booted deployment" },
  },
  run(ctx, args) {
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument '${args.positionals[0]}'`);
    const format = statusFormat(args.values, Deno.stdout.isTerminal());
    let host = readStatus(ctx);
    if (args.values.booted) host = onlyBooted(host);
    ctx.out.write(renderStatus(host, format, { verbose: ctx.globals.verbose > 0, root: ctx.globals.root }));
  },
};
