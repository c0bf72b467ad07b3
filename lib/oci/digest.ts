/**
 * Content digests (`sha256:<hex>`) as the OCI distribution API uses them, and a streaming check of
 * a blob against its descriptor's digest and size.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";

/** Digest algorithms a registry may name. */
export type DigestAlgorithm = "sha256" | "sha512";

const HEX_LENGTH: Readonly<Record<DigestAlgorithm, number>> = { sha256: 64, sha512: 128 };

/** A validated `algorithm:hex` digest string. */
export type Digest = string & { readonly __digest: unique symbol };

/**
 * Validates `text` as a digest and returns it typed.
 *
 * @example
 * ```ts
 * const d = parseDigest("sha256:" + "0".repeat(64));
 * ```
 */
export function parseDigest(text: string): Digest {
  const colon = text.indexOf(":");
  const alg = text.slice(0, colon) as DigestAlgorithm;
  const hex = text.slice(colon + 1);
  if (colon < 0 || !(alg in HEX_LENGTH)) throw new Error(`not a digest: "${text}" (expected sha256:<hex>)`);
  if (hex.length !== HEX_LENGTH[alg] || !/^[0-9a-f]+$/.test(hex)) {
    throw new Error(`not a digest: "${text}" (expected ${HEX_LENGTH[alg]} lowercase hex digits)`);
  }
  return text as Digest;
}

/** The algorithm part of a digest. */
export function digestAlgorithm(digest: Digest): DigestAlgorithm {
  return digest.slice(0, digest.indexOf(":")) as DigestAlgorithm;
}

/** The digest of `bytes`, sha256 unless `alg` says otherwise. */
export function digestOf(bytes: Uint8Array, alg: DigestAlgorithm = "sha256"): Digest {
  return `${alg}:${createHash(alg).update(bytes).digest("hex")}` as Digest;
}

/**
 * Checks a byte stream against an expected digest and size while it passes through: more bytes
 * than `size` fail at once, and a short stream or a wrong digest fail when the stream ends.
 *
 * @example
 * ```ts
 * const check = new BlobVerifier(descriptor.digest, descriptor.size, "blob sha256:…");
 * check.update(chunk); // for every chunk
 * check.finish();      // throws on a mismatch
 * ```
 */
export class BlobVerifier {
  readonly expected: Digest;
  readonly size: number | undefined;
  #what: string;
  #hash: Hash;
  #received = 0;

  /** `size` undefined means the size is not known in advance (a manifest fetched by tag). */
  constructor(expected: Digest, size: number | undefined, what: string) {
    this.expected = expected;
    this.size = size;
    this.#what = what;
    this.#hash = createHash(digestAlgorithm(expected));
  }

  /** Bytes seen so far. */
  get received(): number {
    return this.#received;
  }

  /** Feeds the next chunk; throws as soon as the stream is longer than the expected size. */
  update(chunk: Uint8Array): void {
    this.#received += chunk.length;
    if (this.size !== undefined && this.#received > this.size) {
      throw new Error(`${this.#what}: more than the expected ${this.size} bytes`);
    }
    this.#hash.update(chunk);
  }

  /** Ends the stream; throws if the size or the digest differ from the expected ones. */
  finish(): void {
    if (this.size !== undefined && this.#received !== this.size) {
      throw new Error(`${this.#what}: size mismatch: got ${this.#received} bytes, expected ${this.size}`);
    }
    const alg = digestAlgorithm(this.expected);
    const got = `${alg}:${this.#hash.digest("hex")}`;
    if (got !== this.expected) throw new Error(`${this.#what}: digest mismatch: got ${got}`);
  }
}
