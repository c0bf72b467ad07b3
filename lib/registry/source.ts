/**
 * The registry as an `ImageSource` (lib/oci) for the pull pipeline: the platform's manifest (an
 * index already resolved) and verified blob streams.
 *
 * @module
 */
import { hostPlatform, type Platform } from "../oci/manifest.ts";
import type { DockerReference } from "../oci/reference.ts";
import type { BlobLocation, BlobRef, ImageSource, ManifestBlob } from "../oci/source.ts";
import { RegistryClient, type RegistryClientOptions } from "./client.ts";

/** Options of {@link RegistryImageSource.open}: connection options plus the platform to pick from an index. */
export interface RegistrySourceOptions extends RegistryClientOptions {
  /** Platform chosen from a multi-arch index (default: this machine's). */
  platform?: Platform;
}

/**
 * One image in a registry, opened for pulling.
 *
 * @example
 * ```ts
 * const src = await RegistryImageSource.open("docker://127.0.0.1:5000/rig/layered:1", { tlsVerify: false });
 * const { bytes, digest } = await src.getManifest();
 * const config = await src.getBlob(JSON.parse(new TextDecoder().decode(bytes)).config);
 * src.close();
 * ```
 */
export class RegistryImageSource implements ImageSource {
  /** The underlying client, for callers that need more than the two source calls. */
  readonly client: RegistryClient;
  #platform: Platform;
  #resolved: Promise<{ manifest: ManifestBlob; index?: ManifestBlob }> | undefined;

  private constructor(client: RegistryClient, platform: Platform) {
    this.client = client;
    this.#platform = platform;
  }

  /** Opens `reference` (text or parsed). */
  static async open(
    reference: string | DockerReference,
    options: RegistrySourceOptions = {},
  ): Promise<RegistryImageSource> {
    return new RegistryImageSource(await RegistryClient.open(reference, options), options.platform ?? hostPlatform());
  }

  /** The image manifest for the platform (fetched once; an index is resolved first). */
  async getManifest(): Promise<ManifestBlob> {
    this.#resolved ??= this.client.resolveManifest(this.#platform);
    return (await this.#resolved).manifest;
  }

  /** The index the manifest was chosen from, if the reference named one. */
  async getIndex(): Promise<ManifestBlob | undefined> {
    this.#resolved ??= this.client.resolveManifest(this.#platform);
    return (await this.#resolved).index;
  }

  /** A blob of the image as a stream that errors unless digest and size match `descriptor`. */
  getBlob(descriptor: BlobRef): Promise<ReadableStream<Uint8Array>> {
    return this.client.getBlob(descriptor);
  }

  /** The registry itself: any thread can fetch (and verify) the blob with a client of its own. */
  blobLocation(descriptor: BlobRef): Promise<BlobLocation> {
    const { digest, size } = descriptor;
    return Promise.resolve({ kind: "registry", registry: this.client.access(), descriptor: { digest, size } });
  }

  /** Releases the client. */
  close(): void {
    this.client.close();
  }
}
