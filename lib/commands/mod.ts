/**
 * The command tree of bootcfs. Each command lives in its own file in this folder; add it here.
 *
 * @module
 */
import type { Command } from "../cli/command.ts";
import { digestCommand } from "./digest.ts";

/** Top-level commands, in the order `bootcfs --help` lists them. */
export const COMMANDS: Command[] = [
  digestCommand,
];
