/**
 * `ensure_oci_composefs_erofs` (oci-and-boot.md §6.5): build an image's merged filesystem, commit
 * its EROFS images in every format the repository keeps, and record them in a rewritten config
 * splitstream (and a manifest splitstream pointing at it).
 *
 * @module
 */
import { effectiveFormats, type ObjectId, type Repository } from "../repository/mod.ts";
import type { Digest } from "./digest.ts";
import { commitImages, createFilesystem } from "./filesystem.ts";
import { fullGc } from "../runtime/gc.ts";
import { mallocTrim } from "../../ffi/libc.ts";
import type { EntryLog } from "../tree/entry_log.ts";
import { type ImageRefs, OciImage, writeConfigStream, writeManifestStream } from "./store.ts";

/** What {@link ensureComposefsErofs} produced. */
export interface ErofsCommit {
  /** The repository's default-format image. */
  imageId: ObjectId;
  /** The rewritten config and manifest splitstreams. */
  configVerity: ObjectId;
  manifestVerity: ObjectId;
}

/**
 * Merges the layers (config diff_id order), applies the OCI transform and commits the EROFS image
 * in every format the repository keeps; layers with an entry log (from their import just now) are
 * not read back. Returns the default-format id and the config refs to record
 * (V0 and V1 share the Epoch1 key; upstream looks V0 up under its own number and fails).
 */
export async function commitLayers(
  repo: Repository,
  layerVerities: ObjectId[],
  entryLogs?: (EntryLog | undefined)[],
): Promise<{ imageId: ObjectId; refs: ImageRefs }> {
  const root = await createFilesystem(repo, layerVerities, { entryLogs });
  // The layers' parsing garbage, collected and handed back before the image writer allocates.
  fullGc();
  mallocTrim();
  const ids = commitImages(repo, root);
  const def = effectiveFormats(repo.meta).default;
  const imageId = ids.get(def);
  if (!imageId) throw new Error(`committing the image did not produce the repository's default EROFS format V${def}`);
  return { imageId, refs: { v2: ids.get(2), v1: ids.get(1) ?? ids.get(0) } };
}

/**
 * Generates the EROFS images of container image `digest` and rewrites its config (layer refs,
 * `composefs.image`/`composefs.image.v1`, boot refs kept) and manifest, creating `tag` when given.
 * Returns null for artifacts. The layers are trusted through the named refs (they were verified
 * against their diff_ids when imported).
 */
export async function ensureComposefsErofs(
  repo: Repository,
  digest: Digest,
  verity?: ObjectId,
  tag?: string,
): Promise<ErofsCommit | null> {
  const img = OciImage.open(repo, digest, verity);
  if (!img.isContainer) return null;
  const { imageId, refs } = await commitLayers(repo, img.layerRefs.map(([, id]) => id));
  const configVerity = writeConfigStream(repo, img.configBytes, img.layerRefs, { ...refs, boot: img.images.boot });
  const manifestVerity = writeManifestStream(
    repo,
    img.manifestBytes,
    digest,
    img.configDigest,
    configVerity,
    img.layerRefs,
    tag,
  );
  return { imageId, configVerity, manifestVerity };
}
