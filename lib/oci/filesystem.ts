/**
 * From layer splitstreams to a composefs image (oci-and-boot.md §4.4, §6.1, §6.4): read each layer
 * back into tar entries, merge them, apply the OCI transform, and commit the EROFS images the
 * repository's `meta.json` asks for. Memory follows the metadata: external files are object ids.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { close, mallocTrim, read } from "../../ffi/libc.ts";
import { writeImageTo } from "../erofs/mod.ts";
import { ContextError } from "../error/mod.ts";
import { fullGc } from "../runtime/gc.ts";
import {
  effectiveFormats,
  type ErofsFormat,
  type ObjectId,
  objectIdBytes,
  type Repository,
} from "../repository/mod.ts";
import { type Chunk, contentType, INLINE_CONTENT_MAX, SplitStream } from "../splitstream/mod.ts";
import { type ByteSource, READ_SIZE, readTar } from "../tar/mod.ts";
import { countLinks, type Directory, EMPTY_FILE, type LeafContent } from "../tree/tree.ts";
import { layerEntry, LayerMergeError, LayerMerger } from "../tree/merge.ts";
import { type EntryLog, readEntryLog } from "../tree/entry_log.ts";
import { transformForOci, type XattrMode } from "../tree/transform.ts";

/** Content type of layer splitstreams. */
const OCI_LAYER = contentType("ocilayer");

/** Options of {@link createFilesystem}. */
export interface CreateFilesystemOptions {
  /**
   * `sha256:…` diff_id of each layer: the layer is reassembled and hashed while it is read, and a
   * mismatch is an error (composefs-rs does this when no config verity vouches for the layers).
   */
  verifyDiffIds?: string[];
  /** xattrs kept by the OCI transform; default `allowlist-only`. */
  xattrs?: XattrMode;
  /**
   * The entries of some layers as their import just parsed them (same order as the layers;
   * undefined where a layer's splitstream must be read): trusted like the import itself, they
   * spare reading the layer back. Not with `verifyDiffIds`.
   */
  entryLogs?: (EntryLog | undefined)[];
}

/**
 * The chunks of a layer splitstream as a tar byte source: inline chunks are read, an external
 * chunk is only ever skipped over (it is a regular file's content), and everything that passes is
 * optionally hashed so the reassembled tar can be checked against its diff_id.
 */
class LayerSource implements ByteSource {
  #chunks: Iterator<Chunk>;
  #next: Chunk | null | undefined;
  #repo: Repository;
  #hash: Hash | null;
  #buf: Uint8Array | null = null;
  /** Bytes handed out or skipped so far: the tar reader's position once its buffer is drained. */
  pos = 0;

  constructor(stream: SplitStream, repo: Repository, hash: Hash | null) {
    // The tar reader copies headers and extension data, and is done with a chunk once it asks for
    // the next: the splitstream may reuse its buffer.
    this.#chunks = stream.chunks({ transient: true });
    this.#repo = repo;
    this.#hash = hash;
  }

  #peek(): Chunk | null {
    if (this.#next === undefined) {
      const r = this.#chunks.next();
      this.#next = r.done ? null : r.value;
    }
    return this.#next;
  }

  /** The object of the next chunk if the reader stands exactly at `offset` and that chunk is external. */
  externalAt(offset: number): ObjectId | null {
    const c = this.#peek();
    return this.pos === offset && c?.kind === "external" ? c.id : null;
  }

  read(): Promise<Uint8Array | null> {
    for (;;) {
      const c = this.#peek();
      if (c === null) return Promise.resolve(null);
      if (c.kind === "external") {
        throw new Error(`object ${c.id} is stored external where tar headers or inline data belong`);
      }
      this.#next = undefined;
      if (c.bytes.length === 0) continue;
      this.pos += c.bytes.length;
      this.#hash?.update(c.bytes);
      return Promise.resolve(c.bytes);
    }
  }

  skip(n: number): Promise<void> {
    const c = this.#peek();
    if (c?.kind !== "external") throw new Error(`${n} bytes of file content are stored inline, not as an object`);
    this.#next = undefined;
    this.pos += n;
    if (this.#hash) this.#hashObject(c.id, n);
    return Promise.resolve();
  }

  #hashObject(id: ObjectId, size: number): void {
    const fd = this.#repo.openObject(id);
    try {
      const buf = this.#buf ??= new Uint8Array(READ_SIZE);
      let total = 0;
      for (let n = read(fd, buf, `object ${id}`); n > 0; n = read(fd, buf, `object ${id}`)) {
        this.#hash!.update(buf.subarray(0, n));
        total += n;
      }
      if (total !== size) throw new Error(`object ${id} has ${total} bytes but the tar header says ${size}`);
    } finally {
      close(fd);
    }
  }
}

/** Reads one layer splitstream (§4.4) into `merger`; returns the sha256 of the reassembled tar if asked. */
async function mergeLayer(repo: Repository, verity: ObjectId, merger: LayerMerger, hash: boolean): Promise<string> {
  const stream = SplitStream.parse(repo.readObject(verity), repo.alg);
  if (stream.contentType !== OCI_LAYER) throw new Error(`splitstream ${verity} is not a tar layer`);
  const h = hash ? createHash("sha256") : null;
  const src = new LayerSource(stream, repo, h);
  for await (const ev of readTar(src)) {
    if (ev.type === "global") continue;
    if (ev.type === "end") {
      for await (const _ of ev.trailing()) { /* hashed by the source */ }
      break;
    }
    let file: LeafContent | undefined;
    if (ev.kind === "file") {
      const ext = src.externalAt(ev.dataOffset);
      const what = () => `${JSON.stringify(ev.path)} (${ev.size} bytes)`;
      if (ext !== null) {
        if (ev.size <= INLINE_CONTENT_MAX) throw new Error(`small file ${what()} is incorrectly stored as an object`);
        file = { kind: "external", id: { alg: repo.alg, digest: objectIdBytes(ext) }, size: ev.size };
      } else {
        if (ev.size > INLINE_CONTENT_MAX) throw new Error(`large file ${what()} is incorrectly stored inline`);
        const data = await ev.bytes(INLINE_CONTENT_MAX);
        file = data.length === 0 ? EMPTY_FILE : { kind: "inline", data: data.slice() };
      }
    }
    merger.apply(layerEntry(ev, file));
  }
  return h ? `sha256:${h.digest("hex")}` : "";
}

/**
 * The merged, OCI-transformed filesystem of an image (§6.1): the layer splitstreams `layerVerities`
 * (in config `rootfs.diff_ids` order) read back, merged (§6.2) and transformed (§6.3). With
 * `verifyDiffIds`, each layer must reassemble to its diff_id.
 */
export async function createFilesystem(
  repo: Repository,
  layerVerities: ObjectId[],
  opts: CreateFilesystemOptions = {},
): Promise<Directory> {
  const diffIds = opts.verifyDiffIds;
  if (diffIds && diffIds.length !== layerVerities.length) {
    throw new Error(`${diffIds.length} diff_ids given for ${layerVerities.length} layers`);
  }
  const logs = opts.entryLogs ?? [];
  if (diffIds && logs.some((l) => l)) {
    throw new Error("layers read from entry logs cannot have their diff_ids verified");
  }
  const merger = new LayerMerger();
  for (const [i, verity] of layerVerities.entries()) {
    const name = diffIds?.[i] ?? `${i + 1} (${verity})`;
    if (i > 0) {
      // What parsing a layer leaves (its object ids, entries, buffers) is freed and handed back
      // before the next is read: 18 MiB less at the end of a Debian image's merge, for ~10 ms a layer.
      fullGc();
      mallocTrim();
    }
    merger.beginLayer(name);
    let digest: string;
    try {
      const log = logs[i];
      if (log) {
        for (const { meta, file } of readEntryLog(log, repo.alg)) merger.apply(layerEntry(meta, file));
        digest = "";
      } else digest = await mergeLayer(repo, verity, merger, diffIds !== undefined);
    } catch (e) {
      if (e instanceof LayerMergeError) throw e;
      throw new ContextError(`layer ${name}`, e);
    }
    if (diffIds && digest !== diffIds[i]) throw new Error(`layer ${name} has incorrect checksum ${digest}`);
  }
  transformForOci(merger.root, { xattrs: opts.xattrs });
  return merger.root;
}

/**
 * Writes the EROFS image of `root` in every format of the repository's `meta.json` (`default`, then
 * `extra` ascending, each once; V0/V1 are C mkcomposefs's epoch 1, V2 composefs-rs's) and links
 * each as `images/<id>` (§6.4). GC keeps them only while something refers to them. A hardlinked
 * whiteout (character device 0:0) is refused before anything is written.
 */
export function commitImages(repo: Repository, root: Directory): Map<ErofsFormat, ObjectId> {
  // Checked up front (as upstream's fsck) so that no format is written when one would be refused.
  for (const [leaf, n] of countLinks(root)) {
    if (n > 1 && leaf.isWhiteout) throw new Error("a whiteout (character device 0:0) cannot be hardlinked");
  }
  const f = effectiveFormats(repo.meta);
  const ids = new Map<ErofsFormat, ObjectId>();
  for (const version of [f.default, ...[...f.extra].sort((a, b) => a - b)]) {
    if (!ids.has(version)) ids.set(version, repo.writeImage((write) => writeImageTo(root, write, { version })));
  }
  return ids;
}
