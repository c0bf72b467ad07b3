/**
 * containers-storage metadata files, parsed: `<driver>-layers/layers.json`,
 * `<driver>-images/images.json`, big-data file names (oci-and-boot.md §10.1, test-rig.md §7).
 * Pure code: bytes in, records out.
 *
 * @module
 */
import { type Digest, parseDigest } from "../oci/digest.ts";
import { charCodes } from "../bytes/mod.ts";

/** One layer record of `layers.json`. */
export interface StorageLayer {
  id: string;
  /** The parent layer id, or null for a base layer. */
  parent: string | null;
  names: string[];
  /** The uncompressed tar's digest (the diff_id), when recorded. */
  diffDigest: Digest | null;
  /** The uncompressed tar's size, when recorded. */
  diffSize: number | null;
  /** The digest of the blob the layer was pulled as (compressed), when recorded. */
  compressedDigest: Digest | null;
  compressedSize: number | null;
  /** True while the layer is being created or deleted (`flags.incomplete`). */
  incomplete: boolean;
}

/** One image record of `images.json`. */
export interface StorageImage {
  id: string;
  /** The top layer id, or null for an image without layers. */
  topLayer: string | null;
  names: string[];
  /** The manifest digests the image is known by (`digest`, `digests`, `manifest-<digest>` items). */
  digests: Digest[];
  /** Keys of the image's big-data items (config, manifests, signatures). */
  bigDataNames: string[];
  /** Recorded digests of big-data items by key. */
  bigDataDigests: Record<string, string>;
}

const HEX64 = /^[0-9a-f]{64}$/;

type Json = Record<string, unknown>;

function str(v: unknown, what: string): string {
  if (typeof v !== "string") throw new Error(`${what} is not a string`);
  return v;
}

function optStr(v: unknown, what: string): string | null {
  return v === undefined || v === null || v === "" ? null : str(v, what);
}

function optDigest(v: unknown, what: string): Digest | null {
  const s = optStr(v, what);
  return s === null ? null : parseDigest(s.includes(":") ? s : `sha256:${s}`);
}

function optSize(v: unknown, what: string): number | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== "number" || !Number.isSafeInteger(v)) throw new Error(`${what} is not an integer`);
  return v < 0 ? null : v;
}

function strings(v: unknown, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new Error(`${what} is not a list`);
  return v.map((x, i) => str(x, `${what}[${i}]`));
}

function records(bytes: Uint8Array, file: string): Json[] {
  const text = new TextDecoder().decode(bytes);
  // An empty or absent store writes no file or an empty one.
  if (text.trim() === "") return [];
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (j === null) return [];
  if (!Array.isArray(j)) throw new Error(`${file} is not a JSON list`);
  return j.map((r, i) => {
    if (typeof r !== "object" || r === null || Array.isArray(r)) throw new Error(`${file}[${i}] is not an object`);
    return r as Json;
  });
}

function checkId(id: string, what: string): string {
  if (!HEX64.test(id)) throw new Error(`${what}: invalid id ${JSON.stringify(id)}`);
  return id;
}

/**
 * Parses `layers.json` (or `volatile-layers.json`).
 *
 * @example
 * ```ts
 * const layers = parseLayersJson(await Deno.readFile(`${root}/overlay-layers/layers.json`));
 * ```
 */
export function parseLayersJson(bytes: Uint8Array, file = "layers.json"): StorageLayer[] {
  return records(bytes, file).map((r, i) => {
    const what = `${file}[${i}]`;
    const flags = r.flags as Json | undefined;
    return {
      id: checkId(str(r.id, `${what}.id`), what),
      parent: optStr(r.parent, `${what}.parent`),
      names: strings(r.names, `${what}.names`),
      diffDigest: optDigest(r["diff-digest"], `${what}.diff-digest`),
      diffSize: optSize(r["diff-size"], `${what}.diff-size`),
      compressedDigest: optDigest(r["compressed-diff-digest"], `${what}.compressed-diff-digest`),
      compressedSize: optSize(r["compressed-size"], `${what}.compressed-size`),
      incomplete: typeof flags === "object" && flags !== null && flags.incomplete === true,
    };
  });
}

/**
 * Parses `images.json`.
 *
 * @example
 * ```ts
 * const images = parseImagesJson(await Deno.readFile(`${root}/overlay-images/images.json`));
 * ```
 */
export function parseImagesJson(bytes: Uint8Array, file = "images.json"): StorageImage[] {
  return records(bytes, file).map((r, i) => {
    const what = `${file}[${i}]`;
    const digests: Digest[] = [];
    // Older stores list the other manifests only as `manifest-<digest>` big-data keys.
    const manifestKeys = strings(r["big-data-names"], `${what}.big-data-names`)
      .filter((n) => n.startsWith("manifest-")).map((n) => n.slice(9));
    for (const d of [r.digest, ...(Array.isArray(r.digests) ? r.digests : []), ...manifestKeys]) {
      const p = optDigest(d, `${what}.digest`);
      if (p && !digests.includes(p)) digests.push(p);
    }
    const bdd = r["big-data-digests"];
    const bigDataDigests: Record<string, string> = {};
    if (typeof bdd === "object" && bdd !== null) {
      for (const [k, v] of Object.entries(bdd)) if (typeof v === "string") bigDataDigests[k] = v;
    }
    return {
      id: checkId(str(r.id, `${what}.id`), what),
      topLayer: optStr(r.layer, `${what}.layer`),
      names: strings(r.names, `${what}.names`),
      digests,
      bigDataNames: strings(r["big-data-names"], `${what}.big-data-names`),
      bigDataDigests,
    };
  });
}

/**
 * The file name containers-storage stores a big-data item under: the key itself when it is only
 * `[.0-9a-z]`, else `=` + base64(key).
 *
 * @example
 * ```ts
 * bigDataFileName("manifest"); // "manifest"
 * bigDataFileName("sha256:a254…"); // "=c2hhMjU2OmEyNTRm…"
 * ```
 */
export function bigDataFileName(key: string): string {
  if (/^[.0-9a-z]*$/.test(key)) return key;
  return "=" + btoa(charCodes(new TextEncoder().encode(key)));
}

/** The big-data key of an image's config: `sha256:<image id>` (the image id is the config digest). */
export function configKey(image: StorageImage): string {
  const key = `sha256:${image.id}`;
  if (image.bigDataNames.includes(key)) return key;
  // Images stored by other tools may key the config by a digest other than the id.
  const others = image.bigDataNames.filter((n) => /^sha256:[0-9a-f]{64}$/.test(n));
  if (others.length === 1) return others[0];
  throw new Error(`image ${image.id} has no config item (big-data names: ${image.bigDataNames.join(", ") || "none"})`);
}

/**
 * The layers of an image from top layer id to the base, following `parent` links (at most
 * `maxDepth`), returned base first.
 */
export function layerChain(
  layers: ReadonlyMap<string, StorageLayer>,
  topLayer: string | null,
  maxDepth = 500,
): StorageLayer[] {
  const chain: StorageLayer[] = [];
  for (let id = topLayer; id !== null;) {
    if (chain.length >= maxDepth) throw new Error(`layer chain of ${topLayer} is deeper than ${maxDepth} layers`);
    const l = layers.get(id);
    if (!l) throw new Error(`layer ${id} is not in the storage's layers.json`);
    if (l.incomplete) throw new Error(`layer ${id} is incomplete (being created or deleted)`);
    chain.push(l);
    id = l.parent;
  }
  return chain.reverse();
}
