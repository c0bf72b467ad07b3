/** OCI layouts the bench sections generate: blobs moved in by digest, then config, manifest and index. */
import { createHash } from "node:crypto";

/** Descriptor fields of a blob. */
export interface BlobRef {
  digest: string;
  size: number;
}

/** Moves `path` into `dir/blobs/sha256/` under its digest (streamed, so layers of any size fit). */
export async function putBlob(dir: string, path: string): Promise<BlobRef> {
  const hash = createHash("sha256");
  {
    using f = await Deno.open(path);
    for await (const chunk of f.readable) hash.update(chunk);
  }
  const hex = hash.digest("hex");
  await Deno.rename(path, `${dir}/blobs/sha256/${hex}`);
  return { digest: `sha256:${hex}`, size: (await Deno.stat(`${dir}/blobs/sha256/${hex}`)).size };
}

/**
 * Writes the config (linux/amd64, `diffIds`), the manifest of `layers` and an index tagging it
 * `tag`, completing the layout at `dir` whose layer blobs are already in place. Returns the config
 * descriptor.
 */
export async function finishLayout(
  dir: string,
  layers: (BlobRef & { mediaType: string })[],
  diffIds: string[],
  tag: string,
): Promise<BlobRef> {
  const putJson = async (value: unknown) => {
    await Deno.writeTextFile(`${dir}/tmp.json`, JSON.stringify(value));
    return await putBlob(dir, `${dir}/tmp.json`);
  };
  const config = await putJson({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: diffIds } });
  const manifest = await putJson({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
    layers,
  });
  await Deno.writeTextFile(`${dir}/oci-layout`, '{"imageLayoutVersion":"1.0.0"}');
  await Deno.writeTextFile(
    `${dir}/index.json`,
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        ...manifest,
        annotations: { "org.opencontainers.image.ref.name": tag },
      }],
    }),
  );
  return config;
}
