/**
 * Repository check (composefs-formats.md §1.8): every object re-hashed against its name, every
 * link and ref resolved, every stream (and, with a reader, image) checked for missing objects.
 * `repair` removes what cannot be right: left-over temporary files, damaged objects, and links or
 * refs that lead to missing data.
 *
 * @module
 */
import { fileDigest } from "../fsverity/kernel.ts";
import { SplitStream } from "../splitstream/mod.ts";
import type { ImageObjects } from "./gc.ts";
import { type LinkKind, parseObjectLinkTarget, parseRefTarget } from "./names.ts";
import { isObjectId, type ObjectId, objectIdFromBytes } from "./objectid.ts";
import type { Repository } from "./repository.ts";

/** One problem found, by repository-relative path. */
export interface FsckProblem {
  path: string;
  problem: string;
  repaired: boolean;
}

/** Options of {@link fsck}. */
export interface FsckOptions {
  repair?: boolean;
  /** Reads an image's object references; without it, images are only checked as objects. */
  imageObjects?: ImageObjects;
}

/** What fsck looked at and found. */
export interface FsckResult {
  problems: FsckProblem[];
  objects: number;
  streams: number;
  images: number;
  refs: number;
}

function entries(path: string): Deno.DirEntry[] {
  try {
    return [...Deno.readDirSync(path)].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

/** Checks (and with `repair`, fixes) the repository. */
export function fsck(repo: Repository, opts: FsckOptions = {}): FsckResult {
  if (opts.repair) repo.checkWritable();
  const result: FsckResult = { problems: [], objects: 0, streams: 0, images: 0, refs: 0 };
  const report = (path: string, problem: string, fix: boolean) => {
    const repaired = !!opts.repair && fix;
    if (repaired) repo.removeEntry(path);
    result.problems.push({ path, problem, repaired });
  };

  // Objects whose content is wrong; with repair they are removed, otherwise remembered as bad.
  const bad = new Set<ObjectId>();
  const hexLen = repo.alg === "sha256" ? 62 : 126;
  for (const dir of entries(`${repo.path}/objects`)) {
    const rel = `objects/${dir.name}`;
    if (!dir.isDirectory) {
      const tmp = dir.isFile && dir.name.startsWith(".tmp-object-");
      report(rel, tmp ? "left-over temporary file from an interrupted write" : "unexpected entry", tmp);
      continue;
    }
    if (!/^[0-9a-f]{2}$/.test(dir.name)) {
      report(rel, "unexpected directory", false);
      continue;
    }
    for (const f of entries(`${repo.path}/${rel}`)) {
      const path = `${rel}/${f.name}`;
      const id = dir.name + f.name;
      if (f.name.length !== hexLen || !isObjectId(id, repo.alg)) {
        report(path, `name is not a ${repo.alg} object id`, false);
        continue;
      }
      result.objects++;
      if (!f.isFile) {
        bad.add(id);
        report(path, "not a regular file", true);
        continue;
      }
      const actual = objectIdFromBytes(fileDigest(`${repo.path}/${path}`, repo.alg).digest);
      if (actual !== id) {
        bad.add(id);
        report(path, `content does not match its name (digest ${actual}): corrupt or truncated`, true);
      }
    }
  }
  const present = (id: ObjectId) => !bad.has(id) && repo.hasObject(id);

  const tops: Record<LinkKind, Set<string>> = { streams: new Set(), images: new Set() };
  for (const kind of ["streams", "images"] as const) {
    for (const e of entries(`${repo.path}/${kind}`)) {
      if (e.name === "refs") continue;
      const rel = `${kind}/${e.name}`;
      if (!e.isSymlink) {
        report(rel, "not a symlink", false);
        continue;
      }
      result[kind]++;
      const target = Deno.readLinkSync(`${repo.path}/${rel}`);
      const id = parseObjectLinkTarget(target, repo.alg);
      if (id === null) {
        report(rel, `target ${JSON.stringify(target)} is not an object of this repository (not followed)`, true);
        continue;
      }
      if (!present(id)) {
        report(rel, `points to ${bad.has(id) ? "damaged" : "missing"} object ${id}`, true);
        continue;
      }
      const missing = kind === "streams" ? streamProblem(repo, id, present) : imageProblem(repo, id, present, opts);
      if (missing) report(rel, missing, true);
      else tops[kind].add(e.name);
    }
    for (const { name, target } of repo.listRefs(kind)) {
      result.refs++;
      const rel = `${kind}/refs/${name}`;
      const entry = parseRefTarget(name, target);
      if (entry === null) report(rel, `target ${JSON.stringify(target)} is not a ${kind} entry (not followed)`, true);
      else if (!tops[kind].has(entry)) report(rel, `refers to ${kind}/${entry}, which is missing or broken`, true);
    }
  }
  return result;
}

function streamProblem(repo: Repository, id: ObjectId, present: (id: ObjectId) => boolean): string | null {
  let s: SplitStream;
  try {
    s = SplitStream.parse(repo.readObject(id), repo.alg);
    for (const _ of s.chunks()) { /* decompress and check every chunk */ }
  } catch (e) {
    return `invalid splitstream: ${(e as Error).message}`;
  }
  const missing = s.objectRefs.filter((o) => !present(o));
  if (missing.length) return `refers to ${missing.length} missing or damaged object(s), e.g. ${missing[0]}`;
  for (const [name, target] of s.namedRefs) {
    if (!present(target)) return `named ref ${JSON.stringify(name)} refers to missing or damaged object ${target}`;
  }
  return null;
}

function imageProblem(
  repo: Repository,
  id: ObjectId,
  present: (id: ObjectId) => boolean,
  opts: FsckOptions,
): string | null {
  if (!opts.imageObjects) return null;
  try {
    for (const o of opts.imageObjects(repo.readObject(id), repo.alg)) {
      if (!present(o)) return `image refers to missing or damaged object ${o}`;
    }
  } catch (e) {
    return `invalid image: ${(e as Error).message}`;
  }
  return null;
}
