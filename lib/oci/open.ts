/**
 * Opening an image source from a reference string, for the transports this folder implements.
 *
 * @module
 */
import { DockerArchiveSource } from "./docker_archive.ts";
import { OciLayoutSource } from "./layout.ts";
import type { Platform } from "./manifest.ts";
import { formatImageReference, type ImageReference, parseImageReference } from "./reference.ts";
import type { ImageSource } from "./source.ts";

/** Options for {@link openImageSource}. */
export interface OpenSourceOptions {
  /** The platform to pick from an image index (default: the host's). */
  platform?: Platform;
}

/**
 * Opens `oci:`, `oci-archive:` or `docker-archive:` references. `docker://` and
 * `containers-storage:` are served by `lib/registry` and `lib/cstor`/`lib/podman`; they are
 * refused here with an error saying so.
 *
 * @example
 * ```ts
 * const src = await openImageSource("oci-archive:/tmp/image.tar:localhost/t:1");
 * const img = await loadImage(src);
 * ```
 */
export async function openImageSource(
  ref: string | ImageReference,
  opts: OpenSourceOptions = {},
): Promise<ImageSource> {
  const r = typeof ref === "string" ? parseImageReference(ref) : ref;
  switch (r.transport) {
    case "oci":
      return await OciLayoutSource.openDir(r.path, r.tag, opts);
    case "oci-archive":
      return await OciLayoutSource.openArchive(r.path, r.tag, opts);
    case "docker-archive":
      return await DockerArchiveSource.open(
        r.path,
        r.ref ? { ref: r.ref } : r.index !== undefined ? { index: r.index } : undefined,
      );
    default:
      throw new Error(`${formatImageReference(r)}: the ${r.transport} transport is not a local file source`);
  }
}
