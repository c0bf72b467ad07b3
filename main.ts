/**
 * bootcfs: run image-based Linux systems on composefs. This file only builds the command tree
 * and hands argv to the CLI dispatcher; the work is done in `lib/`.
 *
 * @module
 */
import type { Command } from "./lib/cli/command.ts";
import { runCli } from "./lib/cli/dispatch.ts";
import { COMMANDS } from "./lib/commands/mod.ts";
import { VERSION } from "./lib/version.ts";
import { limitMallocArenas } from "./ffi/libc.ts";

/** The root of the command tree. */
export const BOOTCFS: Command = {
  name: "bootcfs",
  summary: "image-based Linux systems on composefs",
  description: "Imports OS container images into a composefs repository, builds the EROFS images the kernel " +
    "mounts as root, and manages the boot entries that boot them.",
  subcommands: COMMANDS,
};

if (import.meta.main) {
  limitMallocArenas(1);
  Deno.exit(await runCli(BOOTCFS, Deno.args, { version: VERSION }));
}
