/**
 * Names inside a repository (composefs-formats.md §1.1, oci-and-boot.md §2.2): relative symlink
 * targets, ref-name validation, OCI tag encoding. Pure string functions.
 *
 * @module
 */
import type { HashAlg } from "../fsverity/digest.ts";
import { type ObjectId, objectIdFromLinkTarget, objectSubpath } from "./objectid.ts";

/** The two link namespaces of a repository. */
export type LinkKind = "streams" | "images";

/**
 * The relative target of a symlink at `link` pointing to `target` (both relative to the repository
 * root): drop the common leading components, one `..` per remaining parent component of `link`.
 */
export function relativeTarget(link: string, target: string): string {
  const parent = link.split("/").slice(0, -1);
  const t = target.split("/");
  let common = 0;
  while (common < parent.length && common < t.length && parent[common] === t[common]) common++;
  return [...parent.slice(common).map(() => ".."), ...t.slice(common)].join("/");
}

/** The target of `streams/<id>` / `images/<hex>`: `../objects/XX/YYYY`. */
export function objectLinkTarget(id: ObjectId): string {
  return `../objects/${objectSubpath(id)}`;
}

/**
 * The object a top-level link points at, or null when the target is not exactly
 * `../objects/XX/<rest>` — anything else (absolute paths, `..` games) is refused, never followed.
 */
export function parseObjectLinkTarget(target: string, alg: HashAlg): ObjectId | null {
  const id = objectIdFromLinkTarget(target, alg);
  return id !== null && target === objectLinkTarget(id) ? id : null;
}

/** Throws unless `name` is a usable top-level entry name (content identifier or image hex). */
export function checkEntryName(name: string, what: string): void {
  if (name === "" || name === "." || name === ".." || name === "refs" || name.includes("/") || name.includes("\0")) {
    throw new Error(`invalid ${what} name ${JSON.stringify(name)}`);
  }
}

/** Throws unless `name` is a relative ref path of non-empty components without `.`/`..`. */
export function checkRefName(name: string): void {
  const parts = name.split("/");
  if (name.includes("\0") || parts.some((p) => p === "" || p === "." || p === "..")) {
    throw new Error(`invalid ref name ${JSON.stringify(name)}`);
  }
}

/**
 * The top-level entry a ref at `<kind>/refs/<name>` points at, or null when its target is not
 * exactly `../…/<entry>` with one `..` per level (what composefs-rs writes).
 */
export function parseRefTarget(name: string, target: string): string | null {
  const depth = name.split("/").length;
  const prefix = "../".repeat(depth);
  if (!target.startsWith(prefix)) return null;
  const entry = target.slice(prefix.length);
  try {
    checkEntryName(entry, "entry");
  } catch {
    return null;
  }
  return entry;
}

/** OCI tag → ref file name: `%` → `%25` first, then `/` → `%2F`. */
export function encodeTag(tag: string): string {
  if (tag.startsWith("@")) throw new Error(`invalid tag ${JSON.stringify(tag)}: names starting with @ are reserved`);
  if (tag === "") throw new Error("invalid tag: empty");
  return tag.replaceAll("%", "%25").replaceAll("/", "%2F");
}

/** Ref file name → OCI tag, in one pass: `%2F` → `/`, `%25` → `%`, any other `%xx` kept. */
export function decodeTag(name: string): string {
  return name.replace(/%2F|%25/g, (m) => (m === "%2F" ? "/" : "%"));
}
