/**
 * Native OCI distribution (registry v2) client: see README.md.
 *
 * @module
 */
export * from "./auth.ts";
export * from "./client.ts";
export * from "./concurrency.ts";
export * from "../oci/digest.ts";
export * from "./registries_conf.ts";
export * from "./source.ts";
