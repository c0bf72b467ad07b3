/**
 * Test helpers for building filesystems from layers: a minimal layer importer (tar → layer
 * splitstream registered as `oci-layer-<diff_id>`, over `referenceSplit`), importing every layer of
 * an OCI layout, and a canonical listing of a tree or of a real directory (GNU `find` + `getfattr`)
 * so the two can be compared line by line.
 *
 * ```ts
 * const { verities, diffIds } = await importOciLayout(repo, layoutDir);
 * const root = await createFilesystem(repo, verities, { verifyDiffIds: diffIds });
 * assert.deepEqual(treeListing(root, repo), await dirListing(podmanMountPoint));
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import {
  decompressLayer,
  importLayer as importLayerWithLog,
  type LayerInfo,
  loadImage,
  openImageSource,
  parseDigest,
} from "../../lib/oci/mod.ts";
import { type ObjectId, objectIdFromBytes, type Repository } from "../../lib/repository/mod.ts";
import { Directory, type EntryLog, type Leaf, utf8, walk } from "../../lib/tree/mod.ts";
import { referenceSplit } from "./cstor.ts";
import { run } from "./cli.ts";

/** Imports one uncompressed layer tar; returns the layer splitstream's verity and the diff_id. */
export async function importLayer(
  repo: Repository,
  tar: AsyncIterable<Uint8Array>,
): Promise<{ verity: ObjectId; diffId: string }> {
  const hash = createHash("sha256");
  async function* hashed() {
    for await (const c of tar) {
      hash.update(c);
      yield c;
    }
  }
  const { id } = repo.ensureObject(await referenceSplit(repo, hashed()));
  const diffId = `sha256:${hash.digest("hex")}`;
  repo.registerStream(id, `oci-layer-${diffId}`);
  return { verity: id, diffId };
}

/** Calls `each` with every layer of the image in the OCI layout `dir` (config diff_id order), one at a time. */
async function eachLayoutLayer(
  dir: string,
  each: (tar: AsyncIterable<Uint8Array>, layer: LayerInfo) => Promise<void>,
): Promise<void> {
  const src = await openImageSource(`oci:${dir}`);
  try {
    for (const l of (await loadImage(src)).layers) {
      await each(decompressLayer(await src.getBlob(l.descriptor), l.descriptor.mediaType), l);
    }
  } finally {
    src.close();
  }
}

/** Imports every layer of the image in the OCI layout `dir` (config diff_id order). */
export async function importOciLayout(
  repo: Repository,
  dir: string,
): Promise<{ verities: ObjectId[]; diffIds: string[] }> {
  const verities: ObjectId[] = [], diffIds: string[] = [];
  await eachLayoutLayer(dir, async (tar, l) => {
    const r = await importLayer(repo, tar);
    if (r.diffId !== l.diffId) {
      throw new Error(`layer ${l.descriptor.digest}: diff_id ${r.diffId}, config says ${l.diffId}`);
    }
    verities.push(r.verity);
    diffIds.push(r.diffId);
  });
  return { verities, diffIds };
}

/**
 * Imports layer tars (with their diff_ids) with bootcfs's own layer import, as a pull does;
 * returns each layer's verity and the entry log the import kept of it.
 */
export async function importWithEntryLogs(
  repo: Repository,
  layers: { tar: AsyncIterable<Uint8Array>; diffId: string }[],
): Promise<{ verities: ObjectId[]; logs: EntryLog[] }> {
  const verities: ObjectId[] = [], logs: EntryLog[] = [];
  for (const { tar, diffId } of layers) {
    const r = await importLayerWithLog(repo, parseDigest(diffId), tar);
    if (!r.entries) throw new Error(`layer ${diffId} was imported already: no entry log`);
    verities.push(r.id);
    logs.push(r.entries);
  }
  return { verities, logs };
}

/** {@link importWithEntryLogs} of every layer of the OCI layout `dir`. */
export async function importOciLayoutWithEntryLogs(
  repo: Repository,
  dir: string,
): Promise<{ verities: ObjectId[]; logs: EntryLog[] }> {
  const out: { verities: ObjectId[]; logs: EntryLog[] } = { verities: [], logs: [] };
  await eachLayoutLayer(dir, async (tar, l) => {
    const r = await importWithEntryLogs(repo, [{ tar, diffId: l.diffId! }]);
    out.verities.push(...r.verities);
    out.logs.push(...r.logs);
  });
  return out;
}

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const TYPE: Record<string, string> = { fifo: "p", chardev: "c", blockdev: "b", symlink: "l", socket: "s" };

/** What a listing keeps of each xattr name (e.g. only what the OCI transform keeps). */
export type XattrFilter = (name: string) => boolean;

/**
 * One line per path, sorted: `path type mode uid gid size mtime nlink link-leader payload xattrs`,
 * where payload is the symlink target, `maj:min` or the sha256 of the content (external contents
 * read from the repository), and link-leader the first path (in byte order) of a hardlinked file.
 */
export function treeListing(root: Directory, repo: Repository, keep: XattrFilter = () => true): string[] {
  const names = new Map<Leaf, string[]>();
  for (const [path, node] of walk(root)) {
    if (!(node instanceof Directory)) names.set(node, [...(names.get(node) ?? []), utf8(path)]);
  }
  const lines: string[] = [];
  for (const [rawPath, node] of walk(root)) {
    const path = utf8(rawPath);
    const st = node.stat;
    const mtime = `${st.mtimeSec}.${String(st.mtimeNsec).padStart(9, "0")}`;
    const xattrs = [...st.xattrs].filter(([k]) => keep(k)).map(([k, v]) => `${utf8(k)}=${hex(v)}`).sort().join(",");
    let type = "d", size = 0, nlink = 1, leader = "-", payload = "-";
    if (node instanceof Directory) nlink = 2 + node.subdirCount();
    else {
      const c = node.content;
      const paths = names.get(node)!;
      nlink = paths.length;
      if (nlink > 1) leader = [...paths].sort()[0];
      type = TYPE[c.kind] ?? "f";
      size = c.kind === "symlink" ? 0 : node.size;
      if (c.kind === "inline") payload = sha256(c.data);
      else if (c.kind === "external") payload = sha256(repo.readObject(objectIdFromBytes(c.id.digest)));
      else if (c.kind === "symlink") payload = utf8(c.target);
      else if (c.kind === "chardev" || c.kind === "blockdev") payload = devString(c.rdev);
    }
    if (type === "f" && size === 0) payload = sha256(new Uint8Array(0));
    lines.push(
      `${path} ${type} ${
        st.mode.toString(8)
      } ${st.uid} ${st.gid} ${size} ${mtime} ${nlink} ${leader} ${payload} ${xattrs}`,
    );
  }
  return lines.sort();
}

/** `major:minor` of a Linux dev_t (glibc encoding). */
function devString(rdev: number): string {
  const major = (Math.floor(rdev / 2 ** 32) & 0xfffff000) + ((rdev >>> 8) & 0xfff);
  const minor = (Math.floor(rdev / 2 ** 12) & 0xffffff00) + (rdev & 0xff);
  return `${major}:${minor}`;
}

/**
 * The same listing of a real directory, from GNU `find`/`stat` and `getfattr` (independent of
 * lib/): `/` for the directory itself, absolute paths below it.
 */
export async function dirListing(dir: string, keep: XattrFilter = () => true): Promise<string[]> {
  const out = await run("find", [dir, "-printf", "%P\\t%y\\t%m\\t%U\\t%G\\t%s\\t%T@\\t%n\\t%D:%i\\t%l\\n"]);
  const xattrs = await dirXattrs(dir);
  const rows = out.trimEnd().split("\n").map((l) => l.split("\t"));
  const byInode = new Map<string, string[]>();
  for (const r of rows) if (r[1] !== "d") byInode.set(r[8], [...(byInode.get(r[8]) ?? []), "/" + r[0]]);
  const lines: string[] = [];
  for (const [rel, y, mode, uid, gid, size, mtime, nlink, ino, link] of rows) {
    const path = "/" + rel;
    const abs = `${dir}${rel ? "/" + rel : ""}`;
    let payload = "-", sz = Number(size);
    if (y === "f") payload = sha256(await Deno.readFile(abs));
    else if (y === "l") [payload, sz] = [link, 0];
    else if (y === "c" || y === "b") {
      const [maj, min] = (await run("stat", ["-c", "%Hr:%Lr", abs])).trim().split(":");
      payload = `${maj}:${min}`;
    }
    if (y === "d") sz = 0;
    const leader = y !== "d" && Number(nlink) > 1 ? byInode.get(ino)!.sort()[0] : "-";
    const [sec, frac = ""] = mtime.split(".");
    const x = (xattrs.get(path) ?? []).filter(([k]) => keep(k)).map(([k, v]) => `${k}=${v}`).sort().join(",");
    lines.push(
      `${path} ${y} ${mode} ${uid} ${gid} ${sz} ${sec}.${
        frac.padEnd(9, "0").slice(0, 9)
      } ${nlink} ${leader} ${payload} ${x}`,
    );
  }
  return lines.sort();
}

/** `getfattr -R` of a directory: path (relative, `/`-prefixed) → [name, hex value]. */
async function dirXattrs(dir: string): Promise<Map<string, [string, string][]>> {
  const map = new Map<string, [string, string][]>();
  const cmd = new Deno.Command("getfattr", {
    args: ["-R", "-h", "-d", "-m", "-", "-e", "hex", "--absolute-names", dir],
    stdout: "piped",
    stderr: "piped",
  });
  const r = await cmd.output();
  if (!r.success && r.stdout.length === 0) return map;
  let cur = "";
  for (const line of new TextDecoder().decode(r.stdout).split("\n")) {
    if (line.startsWith("# file: ")) {
      const p = line.slice(8);
      cur = p === dir ? "/" : p.slice(dir.length);
    } else if (line.includes("=")) {
      const eq = line.indexOf("=");
      map.set(cur, [...(map.get(cur) ?? []), [line.slice(0, eq), line.slice(eq + 1).replace(/^0x/, "")]]);
    }
  }
  return map;
}
