/**
 * Splitstream writer (composefs-formats.md §3.4). It only lays out bytes: storing external chunks
 * as objects and storing the finished stream are the repository's job (`Repository.writeExternal`,
 * `Repository.writeStream`).
 *
 * @module
 */
import type { HashAlg } from "../fsverity/digest.ts";
import { ZstdCompressor } from "../../ffi/zstd.ts";
import { ensureCapacity } from "../bytes/mod.ts";
import { type ObjectId, objectIdBytes } from "../repository/objectid.ts";
import { encodeHeader, encodeInfo, HEADER_SIZE, INFO_SIZE, refSize } from "./format.ts";

/** An insertion-ordered set of IDs whose indexes never change. */
class IdList {
  readonly ids: ObjectId[] = [];
  #index = new Map<ObjectId, number>();
  ensure(id: ObjectId): number {
    let i = this.#index.get(id);
    if (i === undefined) {
      i = this.ids.length;
      this.ids.push(id);
      this.#index.set(id, i);
    }
    return i;
  }
}

/** Input gathered before each call into libzstd: a layer has several small pieces per tar member. */
const FRAME_INPUT = 128 << 10;

/**
 * Compresses into a growing list of owned pieces. Small pushes are gathered first, so the
 * compressor is called once per {@link FRAME_INPUT} rather than per piece; without flushes, zstd's
 * output does not depend on how its input was cut.
 */
class Frame {
  #z = new ZstdCompressor(3);
  #parts: Uint8Array[] = [];
  #keep = (b: Uint8Array) => void this.#parts.push(b.slice());
  #buf = new Uint8Array(FRAME_INPUT);
  #view = new DataView(this.#buf.buffer);
  #len = 0;

  push(b: Uint8Array): void {
    if (this.#len + b.length > this.#buf.length) {
      this.#drain();
      if (b.length > this.#buf.length) return this.#z.push(b, this.#keep);
    }
    this.#buf.set(b, this.#len);
    this.#len += b.length;
  }

  /** A little-endian signed 64-bit integer (chunk headers). */
  i64(n: number): void {
    if (this.#len + 8 > this.#buf.length) this.#drain();
    this.#view.setBigInt64(this.#len, BigInt(n), true);
    this.#len += 8;
  }

  #drain(): void {
    if (this.#len) this.#z.push(this.#buf.subarray(0, this.#len), this.#keep);
    this.#len = 0;
  }

  finish(): Uint8Array[] {
    this.#drain();
    this.#z.end(this.#keep);
    return this.#parts;
  }

  free(): void {
    this.#z.free();
  }
}

/**
 * Builds one splitstream. Adjacent inline writes coalesce into one chunk; an external reference
 * flushes them. Call {@link finish} once to get the file bytes.
 */
export class SplitStreamWriter {
  readonly alg: HashAlg;
  readonly contentType: bigint;
  #streamRefs = new IdList();
  #objectRefs = new IdList();
  #named = new Map<string, number>();
  /** Inline bytes since the last external chunk: their chunk header needs their total first. */
  #inline = new Uint8Array(16 << 10);
  #inlineSize = 0;
  #total = 0;
  #stream = new Frame();
  #done = false;

  constructor(alg: HashAlg, contentType: bigint) {
    this.alg = alg;
    this.contentType = contentType;
  }

  /** Total length of the stream this file reassembles to, so far. */
  get streamSize(): number {
    return this.#total;
  }

  /** Appends bytes stored inside the splitstream. */
  writeInline(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#total += bytes.length;
    const end = this.#inlineSize + bytes.length;
    this.#inline = ensureCapacity(this.#inline, this.#inlineSize, end);
    this.#inline.set(bytes, this.#inlineSize);
    this.#inlineSize = end;
  }

  #flushInline(): void {
    if (this.#inlineSize === 0) return;
    this.#stream.i64(-this.#inlineSize);
    this.#stream.push(this.#inline.subarray(0, this.#inlineSize));
    this.#inlineSize = 0;
  }

  /** Appends an external chunk: the whole content (`size` bytes) of object `id`, already stored. */
  addExternal(id: ObjectId, size: number): void {
    this.#total += size;
    this.#flushInline();
    this.#stream.i64(this.#objectRefs.ensure(id));
  }

  /** Records `name` → stream object `id` (a re-added name points at the new id). */
  addNamedStreamRef(name: string, id: ObjectId): void {
    if (name.includes("\0")) throw new Error(`splitstream: a ref name cannot contain NUL: ${JSON.stringify(name)}`);
    this.#named.set(name, this.#streamRefs.ensure(id));
  }

  /** Object IDs referenced by external chunks, in first-use order. */
  get objectRefs(): readonly ObjectId[] {
    return this.#objectRefs.ids;
  }

  /** Finishes the stream and returns the whole splitstream file. */
  finish(): Uint8Array {
    if (this.#done) throw new Error("splitstream: writer already finished");
    this.#done = true;
    this.#flushInline();
    const stream = this.#stream.finish();
    const named = new Frame();
    const enc = new TextEncoder();
    // Sorted by the UTF-8 bytes of the name, as Rust's BTreeMap<String> orders them.
    const names = [...this.#named.keys()].map((n) => ({ n, b: enc.encode(n) }));
    names.sort((x, y) => compareBytes(x.b, y.b));
    for (const { n } of names) named.push(enc.encode(`${this.#named.get(n)}:${n}\0`));
    const namedParts = named.finish();

    const rs = refSize(this.alg);
    const len = (parts: Uint8Array[]) => parts.reduce((a, p) => a + p.length, 0);
    const streamRefsStart = HEADER_SIZE + INFO_SIZE;
    const objectRefsStart = streamRefsStart + rs * this.#streamRefs.ids.length;
    const namedStart = objectRefsStart + rs * this.#objectRefs.ids.length;
    const streamStart = namedStart + len(namedParts);
    const end = streamStart + len(stream);
    const out = new Uint8Array(end);
    out.set(encodeHeader(this.alg, { start: HEADER_SIZE, end: HEADER_SIZE + INFO_SIZE }), 0);
    out.set(
      encodeInfo({
        streamRefs: { start: streamRefsStart, end: objectRefsStart },
        objectRefs: { start: objectRefsStart, end: namedStart },
        stream: { start: streamStart, end },
        namedRefs: { start: namedStart, end: streamStart },
        contentType: this.contentType,
        streamSize: this.#total,
      }),
      HEADER_SIZE,
    );
    let o = streamRefsStart;
    for (const id of [...this.#streamRefs.ids, ...this.#objectRefs.ids]) {
      out.set(objectIdBytes(id), o);
      o += rs;
    }
    for (const p of [...namedParts, ...stream]) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  /** Releases the compressor when the stream is abandoned. */
  abort(): void {
    this.#done = true;
    this.#stream.free();
  }
}

/** Byte-wise comparison (memcmp order). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}
