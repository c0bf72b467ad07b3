/** Locations tests read from: the repository root and the shared specs/vectors beside it. */
export const REPO_ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
/** `../shared` next to the checkout (CI puts it there). */
export const SHARED = Deno.env.get("BOOTCFS_SHARED") ?? `${REPO_ROOT}/../shared`;
/** The golden vectors made by the reference tools. */
export const VECTORS = `${SHARED}/vectors`;
