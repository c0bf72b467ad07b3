/**
 * The command tree of bootcfs. Each command lives in its own file in this folder; add it here.
 *
 * @module
 */
import type { Command } from "../cli/command.ts";
import { digestCommand } from "./digest.ts";
import { dumpCommand } from "./dump.ts";
import { mkcomposefsCommand } from "./mkcomposefs.ts";
import { mountCommandWith, umountCommand } from "./mount.ts";
import { ociCommand, ociImageResolver } from "./oci.ts";
import { pullCommand } from "./pull.ts";
import { repoCommand } from "./repo.ts";

/** Top-level commands, in the order `bootcfs --help` lists them. */
export const COMMANDS: Command[] = [
  digestCommand,
  mountCommandWith(ociImageResolver),
  umountCommand,
  repoCommand,
  pullCommand,
  ociCommand,
  mkcomposefsCommand,
  dumpCommand,
];
