/**
 * BLS menu directories on disk (bootc-layout.md §1.7, §3.8 step 4): the staged menu
 * `loader/entries.staged`, written whole and renamed into place so a crash never leaves half of
 * it, and its activation — `renameat2(RENAME_EXCHANGE)` with `loader/entries`, then the old
 * entries deleted — which switches the boot menu in one step.
 *
 * @module
 */
import { RENAME_EXCHANGE, renameat2 } from "../../ffi/libc.ts";
import { fsyncDir, writeSynced } from "../runtime/durable.ts";
import { removeIfExists } from "../runtime/files.ts";
import type { BlsEntry } from "./bls.ts";
import { readBlsEntries } from "./host.ts";

/** Where the staged menu is, beside `loader/entries`. */
export const STAGED_ENTRIES = "entries.staged";

/** Every entry of `loader/entries` and `loader/entries.staged` (what GC must keep bootable), by file path. */
export function readAllEntries(loader: string): [string, BlsEntry][] {
  const all = (dir: string) => readBlsEntries(dir).map(([name, e]): [string, BlsEntry] => [`${dir}/${name}`, e]);
  return [...all(`${loader}/entries`), ...all(`${loader}/${STAGED_ENTRIES}`)];
}

/** Creates directory `path` holding `files` (name → text), each file and the directory synced. */
export function writeMenuDir(path: string, files: ReadonlyMap<string, string>): void {
  Deno.mkdirSync(path);
  for (const [name, text] of files) writeSynced(`${path}/${name}`, text);
  fsyncDir(path);
}

/** Replaces `loader/entries.staged` with `files`; the old staged menu is gone either way. */
export function writeStagedMenu(loader: string, files: ReadonlyMap<string, string>): void {
  const tmp = `${loader}/.${STAGED_ENTRIES}.tmp`;
  removeIfExists(tmp, { recursive: true });
  Deno.mkdirSync(loader, { recursive: true });
  writeMenuDir(tmp, files);
  removeIfExists(`${loader}/${STAGED_ENTRIES}`, { recursive: true });
  Deno.renameSync(tmp, `${loader}/${STAGED_ENTRIES}`);
  fsyncDir(loader);
}

/** Makes the staged menu the boot menu: exchanged with `loader/entries`, then the old entries deleted. */
export function activateStagedMenu(loader: string): void {
  renameat2(`${loader}/${STAGED_ENTRIES}`, `${loader}/entries`, RENAME_EXCHANGE);
  fsyncDir(loader);
  Deno.removeSync(`${loader}/${STAGED_ENTRIES}`, { recursive: true });
  fsyncDir(loader);
}
