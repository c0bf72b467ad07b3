/**
 * Object IDs: the lowercase hex fs-verity digest of an object's content, in the algorithm of the
 * repository (composefs-formats.md §1.3). Branded so a random string is not taken for one.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { DIGEST_SIZE, fromHex, type HashAlg } from "../fsverity/digest.ts";

/** Lowercase hex of an fs-verity digest (64 chars for sha256, 128 for sha512). */
export type ObjectId = string & { readonly __objectId: unique symbol };

/**
 * The ObjectId of raw digest bytes. A flat string from node:buffer: GC keeps hundreds of
 * thousands of these, and a string built by concatenation would be a rope many times larger.
 */
export function objectIdFromBytes(bytes: Uint8Array): ObjectId {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex") as ObjectId;
}

/** Raw digest bytes of an ObjectId. */
export function objectIdBytes(id: ObjectId): Uint8Array {
  return fromHex(id);
}

/** Parses hex (either case) as an ObjectId of `alg`; throws naming the problem. */
export function parseObjectId(hex: string, alg: HashAlg): ObjectId {
  if (hex.length !== DIGEST_SIZE[alg] * 2 || !/^[0-9a-fA-F]+$/.test(hex)) {
    throw new Error(`not a ${alg} object id: ${JSON.stringify(hex)}`);
  }
  return hex.toLowerCase() as ObjectId;
}

/** True if `hex` is a well-formed lowercase ObjectId of `alg`. */
export function isObjectId(hex: string, alg: HashAlg): hex is ObjectId {
  return hex.length === DIGEST_SIZE[alg] * 2 && /^[0-9a-f]+$/.test(hex);
}

/** `objects/`-relative path of an object: `XX/YYYY…`. */
export function objectSubpath(id: ObjectId): string {
  return `${id.slice(0, 2)}/${id.slice(2)}`;
}

/**
 * The ObjectId at the end of a link target such as `../objects/ab/cdef…` (any prefix is accepted,
 * as composefs-rs does), or null when the target does not end in `XX/<rest>` of the right length.
 */
export function objectIdFromLinkTarget(target: string, alg: HashAlg): ObjectId | null {
  const n = DIGEST_SIZE[alg] * 2;
  if (target.length < n + 1) return null;
  const tail = target.slice(target.length - n - 1);
  if (tail[2] !== "/" || (target.length > n + 1 && target[target.length - n - 2] !== "/")) return null;
  const hex = tail.slice(0, 2) + tail.slice(3);
  return isObjectId(hex, alg) ? hex : null;
}
