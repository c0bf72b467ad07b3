/**
 * Splitstream reader (composefs-formats.md §3.1–3.3): both header layouts, every range and index
 * checked, the stream section decompressed incrementally.
 *
 * @module
 */
import { concat } from "../bytes/mod.ts";
import type { HashAlg } from "../fsverity/digest.ts";
import { zstdDecompress, ZstdDecompressor } from "../../ffi/zstd.ts";
import { type ObjectId, objectIdFromBytes } from "../repository/objectid.ts";
import { decodeHeader, decodeInfo, type FileRange, refSize, slice } from "./format.ts";

/** One piece of the reassembled stream. */
export type Chunk = { kind: "inline"; bytes: Uint8Array } | { kind: "external"; id: ObjectId };

/** A parsed splitstream. The file bytes are kept; {@link chunks} decompresses on demand. */
export class SplitStream {
  readonly alg: HashAlg;
  readonly contentType: bigint;
  readonly streamSize: number;
  readonly streamRefs: readonly ObjectId[];
  readonly objectRefs: readonly ObjectId[];
  /** Named refs → stream object IDs (duplicates: the last one wins). */
  readonly namedRefs: ReadonlyMap<string, ObjectId>;
  /** True when the file used the legacy header layout. */
  readonly legacyHeader: boolean;
  #stream: Uint8Array;

  private constructor(file: Uint8Array, expectedAlg?: HashAlg) {
    const header = decodeHeader(file);
    if (expectedAlg && header.alg !== expectedAlg) {
      throw new Error(`splitstream: uses ${header.alg} but the repository uses ${expectedAlg}`);
    }
    this.alg = header.alg;
    this.legacyHeader = header.legacy;
    const info = decodeInfo(file, header.info);
    this.contentType = info.contentType;
    this.streamSize = info.streamSize;
    this.streamRefs = refs(file, info.streamRefs, this.alg, "stream_refs");
    this.objectRefs = refs(file, info.objectRefs, this.alg, "object_refs");
    this.namedRefs = namedRefs(slice(file, info.namedRefs, "named_refs"), this.streamRefs);
    this.#stream = slice(file, info.stream, "stream");
  }

  /** Parses a splitstream file; with `alg`, also requires that hash algorithm. */
  static parse(file: Uint8Array, alg?: HashAlg): SplitStream {
    return new SplitStream(file, alg);
  }

  /** The chunks of the stream, in order; throws on a corrupt, truncated or out-of-range stream. */
  *chunks(): Generator<Chunk> {
    const d = new ZstdDecompressor();
    // Decompressed bytes not yet parsed, kept as pieces until `need` bytes are there, so a large
    // inline chunk is assembled once rather than re-copied for every piece of output.
    let parts: Uint8Array[] = [];
    let have = 0, need = 8;
    try {
      const STEP = 1 << 16;
      let off = 0;
      do {
        const ready: Chunk[] = [];
        d.push(this.#stream.subarray(off, off + STEP), (b) => {
          parts.push(b.slice());
          have += b.length;
          if (have < need) return;
          const [chunks, rest, next] = this.#parse(join(parts));
          ready.push(...chunks);
          parts = rest.length ? [rest] : [];
          have = rest.length;
          need = next;
        });
        off += STEP;
        yield* ready;
      } while (off < this.#stream.length);
      d.end();
    } finally {
      d.free();
    }
    if (have) throw new Error(`splitstream: stream ends inside a chunk (${have} bytes left)`);
  }

  /** Complete chunks at the start of `buf`, the bytes after them, and how many bytes the next one needs. */
  #parse(buf: Uint8Array): [Chunk[], Uint8Array, number] {
    const chunks: Chunk[] = [];
    const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    let o = 0;
    while (buf.length - o >= 8) {
      const n = v.getBigInt64(o, true);
      if (n >= 0n) {
        if (n >= BigInt(this.objectRefs.length)) {
          throw new Error(`splitstream: chunk refers to object ${n} but there are ${this.objectRefs.length}`);
        }
        chunks.push({ kind: "external", id: this.objectRefs[Number(n)] });
        o += 8;
        continue;
      }
      const len = -n;
      if (len > BigInt(buf.length - o - 8)) {
        if (len > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`splitstream: inline chunk of ${len} bytes`);
        return [chunks, buf.subarray(o), 8 + Number(len)];
      }
      chunks.push({ kind: "inline", bytes: buf.subarray(o + 8, o + 8 + Number(len)) });
      o += 8 + Number(len);
    }
    return [chunks, buf.subarray(o), 8];
  }
}

function join(parts: Uint8Array[]): Uint8Array {
  return parts.length === 1 ? parts[0] : concat(parts);
}

function refs(file: Uint8Array, r: FileRange, alg: HashAlg, what: string): ObjectId[] {
  const b = slice(file, r, what);
  const size = refSize(alg);
  if (b.length % size) throw new Error(`splitstream: ${what} length ${b.length} is not a multiple of ${size}`);
  const ids: ObjectId[] = [];
  for (let o = 0; o < b.length; o += size) ids.push(objectIdFromBytes(b.subarray(o, o + size)));
  return ids;
}

function namedRefs(frame: Uint8Array, streamRefs: readonly ObjectId[]): Map<string, ObjectId> {
  const map = new Map<string, ObjectId>();
  if (frame.length === 0) return map;
  const data = zstdDecompress(frame);
  const dec = new TextDecoder("utf-8", { fatal: true });
  let o = 0;
  while (o < data.length) {
    const nul = data.indexOf(0, o);
    if (nul < 0) throw new Error("splitstream: named refs end without a NUL");
    const rec = dec.decode(data.subarray(o, nul));
    const colon = rec.indexOf(":");
    if (colon < 0 || !/^[0-9]+$/.test(rec.slice(0, colon))) {
      throw new Error(`splitstream: malformed named ref ${JSON.stringify(rec)}`);
    }
    const idx = Number(rec.slice(0, colon));
    if (idx >= streamRefs.length) {
      throw new Error(
        `splitstream: named ref ${JSON.stringify(rec)} is out of range (${streamRefs.length} stream refs)`,
      );
    }
    map.set(rec.slice(colon + 1), streamRefs[idx]);
    o = nul + 1;
  }
  return map;
}
