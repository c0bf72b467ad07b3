/**
 * Splitstream reader (composefs-formats.md §3.1–3.3): both header layouts, every range and index
 * checked, the stream section decompressed incrementally.
 *
 * @module
 */
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

  /**
   * The chunks of the stream, in order; throws on a corrupt, truncated or out-of-range stream.
   * With `transient`, inline chunks are views into one reused buffer: valid only until the
   * consumer asks for the first chunk after the batch (one decompressed piece's worth) they came in
   * — for a reader that is done with a chunk once it asks for the next, or copies what it keeps.
   */
  *chunks(opts: { transient?: boolean } = {}): Generator<Chunk> {
    const d = new ZstdDecompressor();
    // Decompressed bytes not yet parsed, gathered until `need` bytes are there, so a large inline
    // chunk is assembled once rather than re-copied for every piece of output.
    const carry = new Carry(opts.transient ?? false);
    let need = 8;
    try {
      const STEP = 1 << 16;
      let off = 0;
      do {
        // Piece by piece, each piece's chunks handed out before the next piece is decoded.
        for (const piece of d.pieces(this.#stream.subarray(off, off + STEP))) {
          carry.append(piece);
          if (carry.length < need) continue;
          const [chunks, used, next] = this.#parse(carry.bytes());
          carry.consume(used);
          need = next;
          yield* chunks;
        }
        off += STEP;
      } while (off < this.#stream.length);
      d.finish();
    } finally {
      d.close();
    }
    if (carry.length) throw new Error(`splitstream: stream ends inside a chunk (${carry.length} bytes left)`);
  }

  /** Complete chunks at the start of `buf`, how many bytes they take, and how many the next one needs. */
  #parse(buf: Uint8Array): [Chunk[], number, number] {
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
        return [chunks, o, 8 + Number(len)];
      }
      chunks.push({ kind: "inline", bytes: buf.subarray(o + 8, o + 8 + Number(len)) });
      o += 8 + Number(len);
    }
    return [chunks, o, 8];
  }
}

/**
 * Decompressed bytes waiting to be parsed. Parsed chunks are views into it, so consumed bytes are
 * only dropped when the next bytes do not fit after the others: the rest goes to a new buffer, or
 * with `reuse` (the consumer being past the chunks handed out when the next piece is appended) to
 * the front of the same one when it fits.
 */
class Carry {
  #buf = new Uint8Array(0);
  #start = 0;
  #end = 0;
  #reuse: boolean;

  constructor(reuse: boolean) {
    this.#reuse = reuse;
  }

  get length(): number {
    return this.#end - this.#start;
  }

  bytes(): Uint8Array {
    return this.#buf.subarray(this.#start, this.#end);
  }

  /** Drops `n` parsed bytes (chunks handed out may still view them until the next append). */
  consume(n: number): void {
    this.#start += n;
  }

  append(b: Uint8Array): void {
    if (this.#end + b.length <= this.#buf.length) {
      this.#buf.set(b, this.#end);
      this.#end += b.length;
      return;
    }
    const left = this.#end - this.#start;
    if (this.#reuse && left + b.length <= this.#buf.length) {
      this.#buf.copyWithin(0, this.#start, this.#end);
    } else {
      // Twice what is pending, so that a large inline chunk arriving in many pieces is copied a
      // constant number of times per byte.
      const next = new Uint8Array(Math.max(2 * (left + b.length), 1 << 16));
      next.set(this.#buf.subarray(this.#start, this.#end));
      this.#buf = next;
    }
    this.#buf.set(b, left);
    this.#start = 0;
    this.#end = left + b.length;
  }
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
