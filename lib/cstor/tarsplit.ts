/**
 * tar-split metadata (`<layer-id>.tar-split.gz`): gzip'd NDJSON of raw tar segments and file
 * entries (oci-and-boot.md §10.4). Line parsing is pure; {@link readTarSplit} streams a file.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { decompress } from "../oci/decompress.ts";
import { readFileChunks } from "../tar/mod.ts";
import { concat } from "../bytes/mod.ts";

/** Raw tar bytes (headers, padding, end-of-archive blocks, trailing data), verbatim. */
export interface TarSplitSegment {
  type: "segment";
  payload: Uint8Array;
}

/** One tar entry's content: `size` bytes of file `name`, checksummed with CRC-64/GO-ISO. */
export interface TarSplitFile {
  type: "file";
  /** The entry name as the tar header gave it (after PAX/GNU long names). */
  name: string;
  /** Content size (0 for directories, links, empty files). */
  size: number;
  /** Big-endian CRC-64/GO-ISO of the content, or null when not recorded (size 0). */
  crc64: Uint8Array | null;
}

export type TarSplitEntry = TarSplitSegment | TarSplitFile;

const tdFatal = new TextDecoder("utf-8", { fatal: true });

function base64(s: unknown, what: string): Uint8Array {
  if (s === undefined || s === null) return new Uint8Array(0);
  if (typeof s !== "string") throw new Error(`${what} is not a base64 string`);
  const b = Buffer.from(s, "base64");
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/**
 * Parses one NDJSON line. File entries carry their CRC under `payload` (what tar-split writes)
 * or `crc64` (what composefs-rs reads); `name_raw` (non-UTF-8 names) must decode as UTF-8.
 *
 * @example
 * ```ts
 * parseTarSplitLine('{"type":1,"name":"a","size":6,"payload":"YUNi02NkIAA=","position":5}');
 * // { type: "file", name: "a", size: 6, crc64: Uint8Array [0x61, 0x43, …] }
 * ```
 */
export function parseTarSplitLine(line: string, lineNo = 0): TarSplitEntry {
  const what = `tar-split line ${lineNo}`;
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(line);
  } catch (e) {
    throw new Error(`${what}: invalid JSON: ${(e as Error).message}`);
  }
  if (typeof j !== "object" || j === null) throw new Error(`${what}: not an object`);
  if (j.type === 2) return { type: "segment", payload: base64(j.payload, `${what}: payload`) };
  if (j.type !== 1) throw new Error(`${what}: unknown entry type ${JSON.stringify(j.type)}`);
  let name: string;
  if (j.name_raw !== undefined && j.name_raw !== null) {
    try {
      name = tdFatal.decode(base64(j.name_raw, `${what}: name_raw`));
    } catch {
      throw new Error(`${what}: file names that are not UTF-8 are not supported`);
    }
  } else if (typeof j.name === "string") {
    name = j.name;
  } else {
    throw new Error(`${what}: file entry without a name`);
  }
  const size = j.size ?? 0;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw new Error(`${what}: invalid size ${JSON.stringify(j.size)}`);
  }
  const crcField = j.crc64 ?? j.payload;
  const crc = crcField === undefined || crcField === null ? null : base64(crcField, `${what}: checksum`);
  if (crc !== null && crc.length !== 8) throw new Error(`${what}: checksum of ${name} is not 8 bytes`);
  return { type: "file", name, size, crc64: crc };
}

/**
 * Splits a stream of bytes into text lines (the last one may lack its newline). Each line is
 * decoded on its own: decoding a whole chunk and splitting it would keep every line's chunk (a
 * MiB of text, and the array of its lines) alive while the consumer works through them, long
 * enough for V8 to move it all to its old generation — 15 MiB of garbage per large layer.
 */
async function* lines(src: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const td = new TextDecoder();
  let carry: Uint8Array | null = null;
  for await (const chunk of src) {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl >= 0; nl = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, nl);
      start = nl + 1;
      // UTF-8 never has a 0x0a inside a character: a line decodes on its own.
      yield td.decode(carry ? concat([carry, piece]) : piece);
      carry = null;
    }
    // The rest waits for the next chunk, copied: the source may reuse this one.
    if (start < chunk.length) carry = carry ? concat([carry, chunk.subarray(start)]) : chunk.slice(start);
  }
  if (carry) yield td.decode(carry);
}

/**
 * Parses uncompressed tar-split NDJSON from a stream of chunks; blank lines are skipped.
 *
 * @example
 * ```ts
 * for await (const e of parseTarSplit(ReadableStream.from([ndjsonBytes]))) console.log(e.type);
 * ```
 */
export async function* parseTarSplit(src: AsyncIterable<Uint8Array>): AsyncGenerator<TarSplitEntry> {
  let n = 0;
  for await (const line of lines(src)) {
    n++;
    if (line.trim() === "") continue;
    yield parseTarSplitLine(line, n);
  }
}

/** Streams the entries of a `.tar-split.gz` file. */
export function readTarSplit(path: string): AsyncGenerator<TarSplitEntry> {
  // Each chunk is decoded to text before the next is asked for: the inflater may reuse its buffers.
  return parseTarSplit(decompress(readFileChunks(path), "gzip", {}, { reuseBuffers: true }));
}
