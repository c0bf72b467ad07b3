/**
 * Rebuilding a layer's exact tar stream from tar-split metadata and the files of the layer's
 * directory (oci-and-boot.md §10.4): raw segments verbatim, file contents read from disk with
 * their size and CRC-64 checked. Two views: per-entry records (raw header bytes + the content's
 * path, for zero-copy import) and the plain byte stream (its sha256 is the layer's diff_id).
 *
 * @module
 */
import { concat } from "../bytes/mod.ts";
import { BLOCK, computeChecksum, paddingOf } from "../tar/mod.ts";
import { Crc64 } from "./crc64.ts";
import type { TarSplitEntry } from "./tarsplit.ts";

/** Where an entry's content lives on disk. */
export interface ContentFile {
  /** Absolute path of the regular file holding exactly the content. */
  path: string;
  /** The storage layer whose directory holds it (a lower layer for overlay metacopy stubs). */
  layerId: string;
}

/** One tar entry of a layer. */
export interface LayerEntry {
  type: "entry";
  /**
   * The archive bytes between the previous entry's content and this entry's content, verbatim:
   * the previous entry's padding (`headerOffset` bytes), then this entry's header blocks
   * (PAX/GNU extension headers and the main header).
   */
  raw: Uint8Array;
  /**
   * Where this entry's own header blocks start in `raw`. (A global PAX header, typeflag `g`, is an
   * entry of its own: its `raw` ends with its unpadded data, whose padding starts the next `raw`.)
   */
  headerOffset: number;
  /** The entry name (after extensions), as tar-split recorded it. */
  name: string;
  /** The main header's typeflag character (`0`, NUL, `7` are regular files). */
  typeflag: string;
  /** Content size. */
  size: number;
  /** The content's file for entries with `size > 0`, else null. */
  content: ContentFile | null;
  /** Recorded CRC-64/GO-ISO of the content (big-endian), or null. */
  crc64: Uint8Array | null;
}

/** The end of a layer: the last entry's padding, the end-of-archive blocks and any trailing bytes. */
export interface LayerEnd {
  type: "end";
  raw: Uint8Array;
}

export type LayerItem = LayerEntry | LayerEnd;

/** Finds the file holding an entry's content (`name` as recorded; `size` for messages). */
export type ContentResolver = (name: string, size: number) => Promise<ContentFile>;

/** The pieces as one array; a single piece is used as it is (they are never modified). */
function joined(parts: Uint8Array[]): Uint8Array {
  return parts.length === 1 ? parts[0] : concat(parts);
}

function octal(h: Uint8Array, off: number, len: number): number {
  const text = new TextDecoder().decode(h.subarray(off, off + len)).replace(/[\0 ]+$/, "").trim();
  if (!/^[0-7]*$/.test(text)) return NaN;
  return text === "" ? 0 : Number.parseInt(text, 8);
}

/**
 * The typeflag of the entry whose header blocks are `raw[start…]`, and the padding that follows
 * `raw` in the next segment. Extension headers (`x`, `L`, `K`, with their padded data) are
 * skipped and every header's checksum is verified; the last block must be the main header. A
 * global PAX header (`g`) is an entry of its own for tar-split, recorded as header + data, its
 * padding starting the next segment (Go's reader skips it on the next call).
 */
function mainHeader(raw: Uint8Array, start: number, name: string): { typeflag: string; padAfter: number } {
  const bad = (why: string) => new Error(`tar-split: the header of ${JSON.stringify(name)} ${why}`);
  for (let p = start;;) {
    if (raw.length - p < BLOCK) throw bad("is not made of whole header blocks");
    const h = raw.subarray(p, p + BLOCK);
    if (octal(h, 148, 8) !== computeChecksum(h)) throw bad("has a bad checksum");
    const typeflag = String.fromCharCode(h[156]);
    if (p + BLOCK === raw.length) return { typeflag, padAfter: -1 };
    if (!"xgLK".includes(typeflag)) throw bad("is followed by unexpected bytes");
    const size = octal(h, 124, 12);
    if (!Number.isSafeInteger(size)) throw bad("has an invalid extension size");
    if (typeflag === "g" && p + BLOCK + size === raw.length) return { typeflag, padAfter: paddingOf(size) };
    p += BLOCK + size + paddingOf(size);
  }
}

/** True for the typeflags whose content composefs treats as file data (regular, contiguous). */
export function isRegularTypeflag(typeflag: string): boolean {
  return typeflag === "0" || typeflag === "\0" || typeflag === "7";
}

/**
 * Groups tar-split entries into tar entries, resolving each non-empty content to a file. The
 * header blocks are checked (checksums, extension sizes); content is only allowed for regular
 * files (what containers-storage extracts to the layer directory).
 *
 * @example
 * ```ts
 * for await (const it of layerItems(readTarSplit(file), resolver)) {
 *   if (it.type === "entry") console.log(it.name, it.size, it.content?.path);
 * }
 * ```
 */
export async function* layerItems(
  entries: AsyncIterable<TarSplitEntry>,
  resolve: ContentResolver,
): AsyncGenerator<LayerItem> {
  let parts: Uint8Array[] = [];
  let prevPad = 0;
  for await (const e of entries) {
    if (e.type === "segment") {
      if (e.payload.length) {
        parts.push(e.payload);
      }
      continue;
    }
    const raw = joined(parts);
    parts = [];
    const { typeflag, padAfter } = mainHeader(raw, prevPad, e.name);
    let content: ContentFile | null = null;
    if (e.size > 0) {
      if (!isRegularTypeflag(typeflag)) {
        throw new Error(
          `tar-split: entry ${JSON.stringify(e.name)} of type ${JSON.stringify(typeflag)} has content; unsupported`,
        );
      }
      content = await resolve(e.name, e.size);
    }
    yield { type: "entry", raw, headerOffset: prevPad, name: e.name, typeflag, size: e.size, content, crc64: e.crc64 };
    prevPad = padAfter >= 0 ? padAfter : paddingOf(e.size);
  }
  const raw = joined(parts);
  if (raw.length < prevPad) throw new Error("tar-split: the archive ends inside the padding of its last entry");
  yield { type: "end", raw };
}

const IO_SIZE = 1 << 20;

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * Reads an entry's content in 1 MiB chunks, checking that the file has exactly `size` bytes and
 * (when recorded and `verify` is set) its CRC-64. Errors name the entry and the file.
 */
export async function* readContent(entry: LayerEntry, verify = true): AsyncGenerator<Uint8Array> {
  const c = entry.content;
  if (!c) return;
  const what = `${JSON.stringify(entry.name)} (${c.path})`;
  using f = await Deno.open(c.path);
  const crc = verify && entry.crc64 ? new Crc64() : null;
  let left = entry.size;
  while (left > 0) {
    const buf = new Uint8Array(Math.min(IO_SIZE, left));
    const n = await f.read(buf);
    if (n === null) throw new Error(`layer file ${what} is shorter than its recorded size ${entry.size}`);
    const chunk = buf.subarray(0, n);
    crc?.update(chunk);
    left -= n;
    yield chunk;
  }
  if ((await f.read(new Uint8Array(1))) !== null) {
    throw new Error(`layer file ${what} is longer than its recorded size ${entry.size}`);
  }
  if (crc) checkCrc64(entry, crc.digest(), c.path);
}

/** Throws unless `got` is the CRC-64 that tar-split recorded for `entry` (read from `path`). */
export function checkCrc64(entry: LayerEntry, got: Uint8Array, path: string): void {
  if (entry.crc64 && hex(got) !== hex(entry.crc64)) {
    throw new Error(
      `layer file ${JSON.stringify(entry.name)} (${path}) does not match its CRC-64 (${hex(got)}, recorded ${
        hex(entry.crc64)
      })`,
    );
  }
}

/**
 * The layer's tar stream rebuilt byte for byte from {@link layerItems}.
 *
 * @example
 * ```ts
 * for await (const c of layerTar(store.layerItems(id))) hash.update(c);
 * ```
 */
export async function* layerTar(items: AsyncIterable<LayerItem>, verify = true): AsyncGenerator<Uint8Array> {
  for await (const it of items) {
    if (it.raw.length) yield it.raw;
    if (it.type === "entry") yield* readContent(it, verify);
  }
}
