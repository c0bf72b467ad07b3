/**
 * An index of the members of a tar file (offset and size of each regular file), built in one
 * pass that seeks over bodies, so archives are read member by member without extracting.
 *
 * @module
 */
import { fileSource, normalizeTarPath, readFileChunks, readTar } from "../tar/mod.ts";

/** Where a member's content lies in the archive file. */
export interface TarMember {
  offset: number;
  size: number;
}

const MAX_LINK_HOPS = 8;

/**
 * A tar file's regular-file members by normalised path (`blobs/sha256/…`, no leading `./`).
 * Hardlinks and symlinks (as `docker save` writes for legacy paths) resolve to their targets.
 */
export class TarFileIndex {
  readonly path: string;
  #members: Map<string, TarMember>;
  #links: Map<string, string>;

  private constructor(path: string, members: Map<string, TarMember>, links: Map<string, string>) {
    this.path = path;
    this.#members = members;
    this.#links = links;
  }

  /**
   * Indexes `path` (one pass over the headers; bodies are skipped by seeking).
   *
   * @example
   * ```ts
   * const idx = await TarFileIndex.open("image.tar");
   * const bytes = await idx.readAll("index.json");
   * ```
   */
  static async open(path: string): Promise<TarFileIndex> {
    const members = new Map<string, TarMember>();
    const links = new Map<string, string>();
    using f = await Deno.open(path);
    const fileSize = (await f.stat()).size;
    for await (const ev of readTar(fileSource(f))) {
      if (ev.type !== "entry") continue;
      const name = normalizeTarPath(ev.pathBytes).join("/");
      if (ev.kind === "file") {
        if (ev.dataOffset + ev.size > fileSize) throw new Error(`${path}: archive is truncated in member ${name}`);
        members.set(name, { offset: ev.dataOffset, size: ev.size });
        links.delete(name);
      } else if (ev.kind === "hardlink" && ev.linkBytes) {
        links.set(name, normalizeTarPath(ev.linkBytes).join("/"));
      } else if (ev.kind === "symlink" && ev.linkBytes) {
        const dir = name.split("/").slice(0, -1).join("/");
        const target = ev.linkTarget!;
        links.set(name, target.startsWith("/") ? normalizeTarPath(target).join("/") : resolveRelative(dir, target));
      }
    }
    return new TarFileIndex(path, members, links);
  }

  /** The member at `name` (links followed), or undefined. */
  get(name: string): TarMember | undefined {
    let n = normalizeTarPath(name).join("/");
    for (let hop = 0; hop <= MAX_LINK_HOPS; hop++) {
      const m = this.#members.get(n);
      if (m) return m;
      const next = this.#links.get(n);
      if (next === undefined) return undefined;
      n = next;
    }
    return undefined;
  }

  /** The member at `name`, or an error naming it. */
  require(name: string): TarMember {
    const m = this.get(name);
    if (!m) throw new Error(`${this.path}: no member ${name} in the archive`);
    return m;
  }

  /** The content of a member as 1 MiB chunks. */
  read(name: string): AsyncGenerator<Uint8Array> {
    const m = this.require(name);
    return readFileChunks(this.path, { offset: m.offset, length: m.size });
  }

  /** The content of a small member in memory (refuses more than `max`, default 16 MiB). */
  async readAll(name: string, max = 16 << 20): Promise<Uint8Array> {
    const m = this.require(name);
    if (m.size > max) throw new Error(`${this.path}: member ${name} is too large to read into memory`);
    const out = new Uint8Array(m.size);
    let o = 0;
    for await (const c of this.read(name)) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

/** `dir/target` with `.`/`..` resolved (never above the archive root). */
function resolveRelative(dir: string, target: string): string {
  const parts = dir ? dir.split("/") : [];
  for (const c of target.split("/")) {
    if (c === "" || c === ".") continue;
    if (c === "..") {
      if (!parts.length) throw new Error(`symlink target ${JSON.stringify(target)} leaves the archive`);
      parts.pop();
    } else {
      parts.push(c);
    }
  }
  return parts.join("/");
}
