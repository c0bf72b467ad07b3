/**
 * Mounting composefs images and reading the mount table.
 *
 * @module
 */
export * from "./composefs.ts";
export * from "./mountinfo.ts";
export * from "./usr_overlay.ts";
