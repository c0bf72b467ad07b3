/**
 * The boot image of an OCI image (oci-and-boot.md §6.6, §6.8 `generate_boot_image`): the merged,
 * OCI-transformed tree with the boot transform applied, committed as EROFS in every format the
 * repository keeps and recorded in the config under `composefs.image.boot[.v1]`, so GC keeps it
 * while the image is tagged. Its id is the deployment id (`composefs=` on the kernel command line).
 *
 * @module
 */
import { toHex } from "../fsverity/digest.ts";
import { type BootResource, bootResources } from "../boot/resources.ts";
import { effectiveFormats, type ErofsFormat, type ObjectId, type Repository } from "../repository/mod.ts";
import { type Directory, isRegularFile, type Leaf, lookup, transformForBoot } from "../tree/mod.ts";
import type { Digest } from "./digest.ts";
import { commitImages, createFilesystem } from "./filesystem.ts";
import { BOOT_REF_PREFIX, OciImage, writeConfigStream, writeManifestStream } from "./store.ts";

/** The config key of a format's boot image in the default xattr mode (`allowlist-only`). */
export function bootRefKey(format: ErofsFormat): string {
  return format === 2 ? BOOT_REF_PREFIX : `${BOOT_REF_PREFIX}.v1`;
}

/** What {@link generateBootImage} produced. */
export interface BootImage {
  /** The repository's default-format boot image: the deployment id. */
  id: ObjectId;
  /** The boot-transformed tree (`/etc` and `/var` are copied from it into a deployment's state). */
  root: Directory;
  /** The image's boot resources, found before `/boot` was emptied. */
  resources: BootResource[];
}

/** The bytes of a regular file of a tree built from `repo` (inline data or its object). */
export function leafBytes(repo: Repository, leaf: Leaf): Uint8Array {
  const c = leaf.content;
  if (c.kind === "inline") return c.data;
  if (c.kind === "external" || c.kind === "external-noverity") return repo.readObject(toHex(c.id.digest) as ObjectId);
  throw new Error(`not a regular file with data (${c.kind})`);
}

/** The text (UTF-8) of a regular file of a tree built from `repo`. */
export function leafText(repo: Repository, leaf: Leaf): string {
  return new TextDecoder().decode(leafBytes(repo, leaf));
}

/**
 * Builds the boot image of manifest `digest` and records it in the image's config (boot refs of
 * other formats and modes kept); the config and manifest are rewritten only when a ref changed.
 */
export async function generateBootImage(repo: Repository, digest: Digest): Promise<BootImage> {
  const image = OciImage.open(repo, digest);
  if (!image.isContainer) throw new Error(`${digest} is an artifact, not a container image`);
  const root = await createFilesystem(repo, image.layerRefs.map(([, id]) => id));
  const resources = bootResources(root);
  transformForBoot(root, (path) => {
    const n = lookup(root, path);
    return isRegularFile(n) ? leafText(repo, n) : null;
  });
  const ids = commitImages(repo, root);
  const boot = new Map(image.images.boot);
  let changed = false;
  for (const [format, id] of ids) {
    const key = bootRefKey(format);
    if (boot.get(key) !== id) changed = true;
    boot.set(key, id);
  }
  const def = effectiveFormats(repo.meta).default;
  const id = ids.get(def)!;
  if (!changed) return { id, root, resources };
  const { v1, v2 } = image.images;
  const configVerity = writeConfigStream(repo, image.configBytes, image.layerRefs, { v1, v2, boot });
  writeManifestStream(repo, image.manifestBytes, digest, image.configDigest, configVerity, image.layerRefs);
  return { id, root, resources };
}
