/**
 * The in-memory filesystem tree shared by EROFS and dumpfile code. See README.md.
 *
 * @module
 */
export * from "./tree.ts";
