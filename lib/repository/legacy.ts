/**
 * Repositories written by composefs-rs before v0.7 (bootc ≤ 1.15): `objects/`, `streams/`,
 * `images/`, but no `meta.json` (composefs-formats.md §1.2 "Upgrade"). {@link upgradeLegacyLayout}
 * writes the missing `meta.json` in place so the repository opens normally; it is a no-op on a
 * repository that has one, so it can run before every pull.
 *
 * @module
 */
import { close, lstat, O_RDONLY, open } from "../../ffi/libc.ts";
import type { HashAlg } from "../fsverity/digest.ts";
import { measureFd } from "../fsverity/kernel.ts";
import { newMeta, serializeMeta } from "./meta.ts";
import { writeMetaFile } from "./repository.ts";

/** What {@link upgradeLegacyLayout} found and did. */
export type LegacyUpgrade =
  | { upgraded: false }
  | { upgraded: true; alg: HashAlg; secure: boolean };

/** The first object of the store, as composefs-rs probes it: its hash (from the name length) and path. */
function firstObject(objects: string): { alg: HashAlg; path: string } | null {
  for (const dir of [...Deno.readDirSync(objects)].map((e) => e.name).sort()) {
    if (!/^[0-9a-f]{2}$/.test(dir)) continue;
    for (const e of Deno.readDirSync(`${objects}/${dir}`)) {
      if (!e.isFile) continue;
      if (/^[0-9a-f]{62}$/.test(e.name)) return { alg: "sha256", path: `${objects}/${dir}/${e.name}` };
      if (/^[0-9a-f]{126}$/.test(e.name)) return { alg: "sha512", path: `${objects}/${dir}/${e.name}` };
    }
  }
  return null;
}

/**
 * Gives a pre-0.7 repository at `path` its `meta.json`: the hash algorithm is read off the object
 * names (sha512 when the store is empty, cfsctl's default), fs-verity is required iff the probed
 * object has it, and the EROFS format is **V2 only** — what those versions wrote, as the
 * composefs-rs `open_upgrade` comment intends (its code takes the current default, V1, which would
 * orphan the V2 images that existing boot entries name). Does nothing when `meta.json` exists or
 * `path` has no `objects/`.
 */
export function upgradeLegacyLayout(path: string): LegacyUpgrade {
  if (lstat(`${path}/meta.json`) !== null || lstat(`${path}/objects`) === null) return { upgraded: false };
  const probe = firstObject(`${path}/objects`);
  const alg = probe?.alg ?? "sha512";
  let secure = false;
  if (probe) {
    const fd = open(probe.path, O_RDONLY);
    try {
      secure = measureFd(fd, alg, probe.path).state === "enabled";
    } finally {
      close(fd);
    }
  }
  try {
    writeMetaFile(path, serializeMeta(newMeta(alg, { default: 2, extra: [] })), alg, secure);
  } catch (e) {
    // Another process upgraded it first: same outcome.
    if (lstat(`${path}/meta.json`) !== null) return { upgraded: false };
    throw e;
  }
  return { upgraded: true, alg, secure };
}
