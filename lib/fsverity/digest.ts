/**
 * The fs-verity file digest (composefs-formats.md §2.1): a Merkle tree of 4 KiB blocks, no salt,
 * SHA-256 or SHA-512, computed incrementally so a file of any size is hashed in constant memory.
 *
 * @module
 */
import { libcrypto } from "../../ffi/crypto.ts";
import { Sha512Lanes } from "../../ffi/ipsec_mb.ts";
import { charCodes } from "../bytes/mod.ts";

/** The hash algorithms of composefs repositories. */
export type HashAlg = "sha256" | "sha512";

/** Digest length in bytes of each algorithm. */
export const DIGEST_SIZE: Readonly<Record<HashAlg, number>> = { sha256: 32, sha512: 64 };

/** The fs-verity Merkle tree block size used everywhere in composefs. */
export const BLOCK_SIZE = 4096;

type BlockHash = (data: Uint8Array, out: Uint8Array) => void;
/** Hashes `count` consecutive blocks of `data` from `offset` into consecutive digests of `out` from `outOffset`. */
type LeafHash = (data: Uint8Array, offset: number, count: number, out: Uint8Array, outOffset: number) => void;

function blockHash(alg: HashAlg): BlockHash {
  if (libcrypto) return libcrypto[alg];
  // node:crypto only where libcrypto is missing: importing it costs every command ~11 ms at start-up.
  // getBuiltinModule loads it synchronously; Deno sets up `process` itself on first use.
  const { createHash } = process.getBuiltinModule("node:crypto");
  return (data, out) => out.set(createHash(alg).update(data).digest());
}

/** Leaves several at a time in SIMD lanes where ipsec-mb can (SHA-512 only), else one by one. */
function leafHash(alg: HashAlg, one: BlockHash): LeafHash {
  const size = DIGEST_SIZE[alg];
  const each: LeafHash = (data, offset, count, out, outOffset) => {
    for (let i = 0; i < count; i++) {
      const at = offset + i * BLOCK_SIZE, to = outOffset + i * size;
      one(data.subarray(at, at + BLOCK_SIZE), out.subarray(to, to + size));
    }
  };
  const lanes = alg === "sha512" ? Sha512Lanes.create() : null;
  if (!lanes) return each;
  // A lone block is faster in OpenSSL than in a lane of its own.
  return (data, offset, count, out, outOffset) =>
    count < 2
      ? each(data, offset, count, out, outOffset)
      : lanes.hashBlocks(data, offset, BLOCK_SIZE, count, out, outOffset);
}

/** One level of the tree: a block being filled with the digests of the level below. */
interface Level {
  buf: Uint8Array;
  fill: number;
  count: number;
}

/**
 * Incremental fs-verity digest. Feed bytes with {@link FsVerityHasher.update} in chunks of any size,
 * then call {@link FsVerityHasher.digest} once.
 *
 * @example
 * ```ts
 * const h = new FsVerityHasher("sha256");
 * h.update(new TextEncoder().encode("hello world"));
 * const hex = toHex(h.digest());
 * ```
 */
export class FsVerityHasher {
  readonly alg: HashAlg;
  #hash: BlockHash;
  #leaves: LeafHash;
  #size: number;
  #block = new Uint8Array(BLOCK_SIZE);
  #blockFill = 0;
  #length = 0;
  #levels: Level[] = [];
  #digest = new Uint8Array(64);

  constructor(alg: HashAlg) {
    this.alg = alg;
    this.#hash = blockHash(alg);
    this.#leaves = leafHash(alg, this.#hash);
    this.#size = DIGEST_SIZE[alg];
  }

  /** Bytes fed so far. */
  get length(): number {
    return this.#length;
  }

  /** Starts over for another file, keeping the buffers (an import hashes thousands of small files). */
  reset(): void {
    for (const l of this.#levels) {
      l.buf.fill(0, 0, l.fill); // partial blocks are hashed zero-padded
      l.fill = 0;
      l.count = 0;
    }
    this.#blockFill = 0;
    this.#length = 0;
  }

  /** Adds `data` to the file content being hashed. */
  update(data: Uint8Array): void {
    this.#length += data.length;
    let off = 0;
    if (this.#blockFill > 0) {
      const n = Math.min(BLOCK_SIZE - this.#blockFill, data.length);
      this.#block.set(data.subarray(0, n), this.#blockFill);
      this.#blockFill += n;
      off = n;
      if (this.#blockFill < BLOCK_SIZE) return;
      this.#pushHash(0, this.#block);
      this.#blockFill = 0;
    }
    // Whole blocks are hashed straight from the caller's buffer, as many at once as the leaf level has room for.
    while (data.length - off >= BLOCK_SIZE) {
      const l = this.#room(0);
      const n = Math.min(Math.floor((data.length - off) / BLOCK_SIZE), (BLOCK_SIZE - l.fill) / this.#size);
      this.#leaves(data, off, n, l.buf, l.fill);
      l.fill += n * this.#size;
      l.count += n;
      off += n * BLOCK_SIZE;
    }
    if (off < data.length) {
      this.#block.set(data.subarray(off), 0);
      this.#blockFill = data.length - off;
    }
  }

  /**
   * `level`, with room for a digest. A full tree block moves up only when the next digest arrives,
   * because until then it may be the root.
   */
  #room(level: number): Level {
    let l = this.#levels[level];
    if (!l) l = this.#levels[level] = { buf: new Uint8Array(BLOCK_SIZE), fill: 0, count: 0 };
    if (l.fill === BLOCK_SIZE) {
      this.#pushHash(level + 1, l.buf);
      l.buf.fill(0);
      l.fill = 0;
    }
    return l;
  }

  /** Hashes `block` into the next free slot of `level`. */
  #pushHash(level: number, block: Uint8Array): void {
    const l = this.#room(level);
    this.#hash(block, l.buf.subarray(l.fill, l.fill + this.#size));
    l.fill += this.#size;
    l.count++;
  }

  /** Finishes the tree and returns the fs-verity digest (32 or 64 bytes). Call once (per {@link reset}). */
  digest(): Uint8Array {
    const root = new Uint8Array(64);
    if (this.#length > 0) {
      if (this.#blockFill > 0) {
        this.#block.fill(0, this.#blockFill);
        this.#pushHash(0, this.#block);
      }
      for (let i = 0;; i++) {
        const l = this.#levels[i];
        // The root: a single digest with nothing above it (levels above may be left from before a reset).
        if (l.count === 1 && !this.#levels[i + 1]?.count) {
          root.set(l.buf.subarray(0, this.#size));
          break;
        }
        // Zero padding of a partial block is already in place: buffers are cleared on reuse.
        this.#pushHash(i + 1, l.buf);
      }
    }
    const desc = new Uint8Array(256);
    desc[0] = 1;
    desc[1] = this.alg === "sha256" ? 1 : 2;
    desc[2] = 12;
    new DataView(desc.buffer).setBigUint64(8, BigInt(this.#length), true);
    desc.set(root, 16);
    const out = this.#digest.subarray(0, this.#size);
    this.#hash(desc, out);
    return out.slice();
  }
}

/** One hasher per algorithm for {@link fsverityDigest}, which runs to completion without yielding. */
const shared: Partial<Record<HashAlg, FsVerityHasher>> = {};

/** The fs-verity digest of bytes held in memory. */
export function fsverityDigest(data: Uint8Array, alg: HashAlg): Uint8Array {
  const h = shared[alg] ??= new FsVerityHasher(alg);
  h.reset();
  h.update(data);
  return h.digest();
}

const HEX_CODES = new TextEncoder().encode("0123456789abcdef");
/** Char codes of the hex being built: one buffer for every call, as each allocation is garbage. */
const hexCodes = new Uint8Array(8192);

/** Lowercase hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  // Object ids are printed by the ten thousand: char codes, then one flat string per 4 KiB.
  let s = "";
  for (let start = 0; start < bytes.length; start += 4096) {
    const part = bytes.subarray(start, start + 4096);
    for (let i = 0; i < part.length; i++) {
      hexCodes[2 * i] = HEX_CODES[part[i] >> 4];
      hexCodes[2 * i + 1] = HEX_CODES[part[i] & 15];
    }
    s += charCodes(hexCodes.subarray(0, 2 * part.length));
  }
  return s;
}

/** Value of each hex digit's char code, -1 for anything else. */
const HEX_VALUE = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < 16; i++) t["0123456789abcdef".charCodeAt(i)] = t["0123456789ABCDEF".charCodeAt(i)] = i;
  return t;
})();

/** Bytes of a hex string (either case); throws on odd length or a non-hex digit. */
export function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  // Object ids are decoded by the ten thousand (splitstreams, EROFS images): no regex, no parseInt.
  let bad = hex.length % 2 !== 0;
  for (let i = 0; i < out.length && !bad; i++) {
    const hi = HEX_VALUE[hex.charCodeAt(2 * i)] ?? -1, lo = HEX_VALUE[hex.charCodeAt(2 * i + 1)] ?? -1;
    bad = hi < 0 || lo < 0;
    out[i] = (hi << 4) | lo;
  }
  if (bad) throw new Error(`not a hex string: ${JSON.stringify(hex)}`);
  return out;
}
