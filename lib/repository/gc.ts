/**
 * Garbage collection (composefs-formats.md §6): mark objects reachable from image and stream
 * roots, sweep the rest, then prune links whose objects are gone. Memory grows with the number of
 * live objects and streams, not with their bytes (splitstream bodies are not decompressed).
 *
 * @module
 */
import type { HashAlg } from "../fsverity/digest.ts";
import { SplitStream } from "../splitstream/mod.ts";
import { checkEntryName, type LinkKind, parseObjectLinkTarget, parseRefTarget } from "./names.ts";
import { isObjectId, type ObjectId } from "./objectid.ts";
import type { Repository } from "./repository.ts";

/**
 * The objects an EROFS image refers to through its `trusted.overlay.metacopy` /
 * `trusted.overlay.redirect` xattrs (implemented by `lib/erofs`). It must throw on an invalid image.
 */
export type ImageObjects = (image: Uint8Array, alg: HashAlg) => Iterable<ObjectId>;

/** Options of {@link gc}. */
export interface GcOptions {
  /** Top-level `images/` or `streams/` entry names kept alive in addition to the refs. */
  roots?: string[];
  /** Count only; takes no exclusive lock and deletes nothing. */
  dryRun?: boolean;
  /** Reads an image's object references; required when there are image roots. */
  imageObjects?: ImageObjects;
  /** How long to wait for the exclusive lock (ms, default: as long as it takes). */
  lockWaitMs?: number;
  /** Called once when GC has to wait for other users of the repository. */
  onWait?: () => void;
}

/** What GC removed (or, with `dryRun`, would remove). */
export interface GcResult {
  objectsRemoved: number;
  bytesFreed: number;
  imagesPruned: number;
  streamsPruned: number;
  liveObjects: number;
}

/** A directory's entries, or none when it does not exist. */
function entries(path: string): Deno.DirEntry[] {
  try {
    return [...Deno.readDirSync(path)];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

/** Top-level links of `images/` or `streams/` (everything but `refs`, which must all be symlinks). */
function topLinks(repo: Repository, kind: LinkKind): Map<string, ObjectId | null> {
  const out = new Map<string, ObjectId | null>();
  for (const e of entries(`${repo.path}/${kind}`)) {
    if (e.name === "refs") continue;
    if (!e.isSymlink) throw new Error(`${repo.path}/${kind}/${e.name} is not a symlink; refusing to collect garbage`);
    out.set(e.name, parseObjectLinkTarget(Deno.readLinkSync(`${repo.path}/${kind}/${e.name}`), repo.alg));
  }
  return out;
}

/** Marks everything reachable and returns the live set. */
function mark(repo: Repository, opts: GcOptions): Set<ObjectId> {
  const live = new Set<ObjectId>();
  const extra = new Set(opts.roots ?? []);
  for (const r of extra) checkEntryName(r, "root");

  const images = topLinks(repo, "images");
  const imageRoots = new Set<string>();
  for (const { name, target } of repo.listRefs("images")) {
    const entry = parseRefTarget(name, target);
    if (entry !== null && images.has(entry)) imageRoots.add(entry);
  }
  for (const r of extra) if (images.has(r)) imageRoots.add(r);
  for (const name of imageRoots) {
    const id = images.get(name);
    if (!id || !repo.hasObject(id)) continue; // dangling: pruned later
    if (!opts.imageObjects) {
      throw new Error(`cannot collect garbage: image ${name} must be read, but no EROFS reader is available`);
    }
    live.add(id);
    const image = repo.readObject(id);
    try {
      for (const o of opts.imageObjects(image, repo.alg)) live.add(o);
    } catch (e) {
      throw new Error(`cannot collect garbage: image ${name} is invalid`, { cause: e });
    }
  }

  const streams = topLinks(repo, "streams");
  const streamByObject = new Map<ObjectId, string>();
  for (const [name, id] of streams) if (id) streamByObject.set(id, name);
  const todo: string[] = [];
  for (const { name, target } of repo.listRefs("streams")) {
    const entry = parseRefTarget(name, target);
    if (entry !== null && streams.has(entry)) todo.push(entry);
  }
  for (const r of extra) if (streams.has(r)) todo.push(r);
  const walked = new Set<string>();
  while (todo.length) {
    const name = todo.pop()!;
    if (walked.has(name)) continue;
    walked.add(name);
    const id = streams.get(name);
    if (!id || !repo.hasObject(id)) continue;
    live.add(id);
    const s = SplitStream.parse(repo.readObject(id), repo.alg);
    for (const o of s.objectRefs) live.add(o);
    for (const target of s.namedRefs.values()) {
      live.add(target);
      const sub = streamByObject.get(target);
      if (sub !== undefined) todo.push(sub);
    }
  }
  return live;
}

/**
 * Collects garbage. Holds the exclusive lock while it runs (a dry run only the shared one), so
 * bootcfs and cfsctl never collect under each other or under a writer.
 */
export async function gc(repo: Repository, opts: GcOptions = {}): Promise<GcResult> {
  if (!opts.dryRun) {
    repo.checkWritable();
    await repo.lockExclusive(opts.lockWaitMs ?? Infinity, opts.onWait);
  }
  try {
    const live = mark(repo, opts);
    const result: GcResult = { objectsRemoved: 0, bytesFreed: 0, imagesPruned: 0, streamsPruned: 0, liveObjects: 0 };
    const hexLen = repo.alg === "sha256" ? 62 : 126;
    const doomed: string[] = [];
    const flush = async () => {
      if (!opts.dryRun) await repo.removeEntries(doomed);
      doomed.length = 0;
    };
    for (const dir of entries(`${repo.path}/objects`)) {
      if (!dir.isDirectory) continue; // temporary files directly in objects/ are not GC's business
      if (!/^[0-9a-f]{2}$/.test(dir.name)) throw new Error(`unexpected directory ${repo.path}/objects/${dir.name}`);
      for (const f of entries(`${repo.path}/objects/${dir.name}`)) {
        const id = dir.name + f.name;
        if (f.name.length !== hexLen || !isObjectId(id, repo.alg)) {
          throw new Error(`unexpected file ${repo.path}/objects/${dir.name}/${f.name}; refusing to collect garbage`);
        }
        if (live.has(id)) {
          result.liveObjects++;
          continue;
        }
        const rel = `objects/${dir.name}/${f.name}`;
        result.bytesFreed += Deno.lstatSync(`${repo.path}/${rel}`).size;
        result.objectsRemoved++;
        doomed.push(rel);
      }
      if (doomed.length >= 4096) await flush();
    }
    await flush();
    result.imagesPruned = prune(repo, "images", live, !!opts.dryRun);
    result.streamsPruned = prune(repo, "streams", live, !!opts.dryRun);
    return result;
  } finally {
    if (!opts.dryRun) repo.unlockExclusive();
  }
}

/**
 * Removes top-level links whose object is gone (in a dry run: is not live), then refs whose entry
 * is gone. Returns how many top-level links went.
 */
function prune(repo: Repository, kind: LinkKind, live: Set<ObjectId>, dryRun: boolean): number {
  const gone = new Set<string>();
  const tops = topLinks(repo, kind);
  for (const [name, id] of tops) {
    const alive = id !== null && (dryRun ? live.has(id) : repo.hasObject(id));
    if (alive) continue;
    gone.add(name);
    if (!dryRun) repo.removeEntry(`${kind}/${name}`);
  }
  for (const { name, target } of repo.listRefs(kind)) {
    const entry = parseRefTarget(name, target);
    const dangling = entry === null || !tops.has(entry) || gone.has(entry);
    if (dangling && !dryRun) repo.removeEntry(`${kind}/refs/${name}`);
  }
  return gone.size;
}
