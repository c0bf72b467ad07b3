/**
 * Podman libpod client and transient service: see README.md.
 *
 * @module
 */
export * from "./client.ts";
export * from "./pull_stream.ts";
export * from "./service.ts";
export * from "./unified.ts";
