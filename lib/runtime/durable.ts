/**
 * Writing files so that a crash leaves either the old or the new content, never a mix: data
 * written and fsynced under a temporary name, renamed over the old, the directory fsynced.
 *
 * @module
 */
import { basename, dirname } from "node:path";
import { removeIfExists } from "./files.ts";
import {
  close,
  fsync,
  O_CREAT,
  O_DIRECTORY,
  O_RDONLY,
  O_TRUNC,
  O_WRONLY,
  open,
  syncfs,
  writeAll,
} from "../../ffi/libc.ts";

/** fsync(2) of a directory, making the names created, renamed or removed in it durable. */
export function fsyncDir(path: string): void {
  const fd = open(path, O_RDONLY | O_DIRECTORY);
  try {
    fsync(fd, path);
  } finally {
    close(fd);
  }
}

/** Creates or truncates `path`, writes `data` and fsyncs it (its name is not synced). */
export function writeSynced(path: string, data: string | Uint8Array, mode = 0o644): void {
  const fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  try {
    writeAll(fd, typeof data === "string" ? new TextEncoder().encode(data) : data, path);
    fsync(fd, path);
  } finally {
    close(fd);
  }
}

/**
 * Replaces `path` atomically: `write` creates `.<name>.tmp` beside it (with any content, however
 * large), which is then fsynced, given `mode`, renamed over `path`, and the directory synced.
 */
export function replaceFileWith(path: string, write: (tmp: string) => void, mode = 0o644): void {
  const tmp = `${dirname(path)}/.${basename(path)}.tmp`;
  removeIfExists(tmp);
  try {
    write(tmp);
    const fd = open(tmp, O_RDONLY);
    try {
      fsync(fd, tmp);
    } finally {
      close(fd);
    }
    Deno.chmodSync(tmp, mode);
    Deno.renameSync(tmp, path);
  } catch (e) {
    removeIfExists(tmp);
    throw e;
  }
  fsyncDir(dirname(path));
}

/** Replaces `path` atomically with `data` ({@link replaceFileWith}). */
export function replaceFile(path: string, data: string | Uint8Array, mode = 0o644): void {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  replaceFileWith(path, (tmp) => Deno.writeFileSync(tmp, bytes), mode);
}

/** syncfs(2) of the filesystem holding `path`: everything written there, in one call. */
export function syncFilesystem(path: string): void {
  const fd = open(path, O_RDONLY);
  try {
    syncfs(fd, path);
  } finally {
    close(fd);
  }
}
