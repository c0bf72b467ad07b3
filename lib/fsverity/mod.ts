/**
 * fs-verity: the userspace Merkle digest (composefs-formats.md §2.1) and digests of files.
 *
 * @module
 */
export * from "./digest.ts";
export * from "./file.ts";
