/**
 * `pull()` (oci-and-boot.md §3): image reference → repository. Layers are fetched concurrently
 * (largest first, bounded) and imported on several threads (layer_workers.ts), each verified
 * against its blob digest and size (by the source) and its diff_id (hashed while it streams);
 * then the config splitstream (layer refs in diff_id order), the manifest splitstream, the EROFS
 * images with the config/manifest rewrite, and the tag last. A failure anywhere leaves no tag;
 * layers already registered are reused by the next pull.
 *
 * @module
 */
import { ContainersStorageSource } from "../cstor/source.ts";
import type { ProgressReporter } from "../cli/progress.ts";
import type { EntryLog } from "../tree/entry_log.ts";
import { withContext } from "../error/mod.ts";
import { mallocTrim } from "../../ffi/libc.ts";
import { fullGc, trimmingMalloc } from "../runtime/gc.ts";
import { RegistryImageSource } from "../registry/source.ts";
import type { Digest } from "./digest.ts";
import { effectiveFormats, type ObjectId, type Repository } from "../repository/mod.ts";
import { SplitStream } from "../splitstream/mod.ts";
import type { DecompressLimits } from "./decompress.ts";
import { commitLayers } from "./erofs_image.ts";
import { addStats, emptyStats, type ImportStats } from "./layer_import.ts";
import { type BlobLayerJob, LayerWorkers } from "./layer_workers.ts";
import type { Platform } from "./manifest.ts";
import { isTarLayer } from "./mediatype.ts";
import { openImageSource } from "./open.ts";
import { parseImageReference } from "./reference.ts";
import { type BlobRef, counting, type ImageSource, type LayerInfo, loadImage } from "./source.ts";
import {
  BOOT_REF_PREFIX,
  configContentId,
  CONTENT_TYPE,
  type ImageRefs,
  layerContentId,
  type LayerRefs,
  manifestContentId,
  OciImage,
  tagImage,
  writeConfigStream,
  writeManifestStream,
} from "./store.ts";
import { upgradeRepo, type UpgradeResult } from "./upgrade.ts";

/** How `containers-storage:` layers are imported. */
export type LocalFetch = "auto" | "zerocopy" | "disabled";

/** Options of {@link pull}. */
export interface PullOptions {
  /** Tag the image (`streams/refs/oci/<encoded tag>`) once everything is stored. */
  tag?: string;
  /** Platform picked from an image index (default: this machine's). */
  platform?: Platform;
  /** `docker://`: false allows plain HTTP (`--tls-verify=false`). */
  tlsVerify?: boolean;
  /** `docker://`: the only auth file consulted (`--authfile`). */
  authFile?: string;
  /**
   * `containers-storage:`: `auto` (default) imports straight from the storage's files (reflink,
   * hardlink or copy; per-file CRC-64 checked), `zerocopy` refuses copies, `disabled` streams the
   * rebuilt tar like any other source (diff_id hashed).
   */
  localFetch?: LocalFetch;
  /** Layers imported at the same time (default: min(4, CPUs)). */
  concurrency?: number;
  /** Limits against decompression bombs. */
  decompressLimits?: DecompressLimits;
  /** Per-layer progress. */
  progress?: ProgressReporter;
  /** Notes for verbose output. */
  log?: (message: string) => void;
  /** Read from this source instead of opening `imgref` (tests, callers that opened it already). */
  source?: ImageSource;
}

/** One layer of a pull. */
export interface PulledLayer {
  /** diff_id (container images) or blob digest (artifacts): the key of `oci-layer-<key>`. */
  key: Digest;
  verity: ObjectId;
  alreadyPresent: boolean;
}

/**
 * What a pull stored. The verities are those **after** the EROFS rewrite (what `streams/` names
 * now), not upstream's stale pre-rewrite values (§3.9).
 */
export interface PullResult {
  manifestDigest: Digest;
  manifestVerity: ObjectId;
  configDigest: Digest;
  configVerity: ObjectId;
  /** The repository's default-format EROFS image; null for artifacts. */
  imageId: ObjectId | null;
  /** True when the image was complete before (nothing fetched, nothing rewritten). */
  alreadyPresent: boolean;
  layers: PulledLayer[];
  stats: ImportStats;
  /** What the pre-pull repository upgrade did. */
  upgrade: UpgradeResult;
}

/** Opens the source of any transport bootcfs reads. */
export async function openSource(imgref: string, opts: PullOptions = {}): Promise<ImageSource> {
  const r = parseImageReference(imgref);
  switch (r.transport) {
    case "docker":
      return await RegistryImageSource.open(r.ref, {
        platform: opts.platform,
        tlsVerify: opts.tlsVerify,
        authFile: opts.authFile,
      });
    case "containers-storage":
      return await ContainersStorageSource.open(imgref);
    default:
      return await openImageSource(r, { platform: opts.platform });
  }
}

/**
 * Runs `jobs` with at most `limit` reading at a time: a job frees its place early by calling the
 * `free` it is given (it then only waits, for the disk), else when it ends. After a failure starts
 * no more, waits for all, rethrows the first. `onIdle` is called each time a runner finds no job
 * left while others still run.
 */
async function bounded(
  jobs: ((free: () => void) => Promise<void>)[],
  limit: number,
  onIdle?: () => void,
): Promise<void> {
  let next = 0;
  const state: { failed?: { e: unknown } } = {};
  const started: Promise<void>[] = [];
  const runner = async () => {
    while (!state.failed && next < jobs.length) {
      const job = jobs[next++];
      let free!: () => void;
      const freed = new Promise<void>((r) => free = r);
      const run = job(free).catch((e) => void (state.failed ??= { e }));
      started.push(run);
      await Promise.race([run, freed]);
    }
    if (!state.failed) onIdle?.();
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, jobs.length)) }, runner));
  await Promise.all(started);
  if (state.failed) throw state.failed.e;
}

/**
 * Why a layer that failed to decompress or parse really failed: the blob is read again, and a
 * digest or size mismatch (only detected at its end, after the corrupt bytes were decoded) is the
 * error to report. Null when the blob itself is intact.
 */
async function blobProblem(source: ImageSource, desc: BlobRef): Promise<unknown> {
  try {
    for await (const _ of await source.getBlob(desc)) { /* the source verifies while streaming */ }
    return null;
  } catch (e) {
    return e;
  }
}

/** A non-tar artifact blob stored as an `oci_blob` splitstream with one external object. */
async function importBlob(repo: Repository, key: Digest, blob: AsyncIterable<Uint8Array>): Promise<ObjectId> {
  const stored = await repo.ensureObjectFromStream(blob);
  const w = repo.createStreamWriter(CONTENT_TYPE.blob);
  w.addExternal(stored.id, stored.size);
  return repo.writeStream(w, layerContentId(key));
}

/**
 * Pulls `imgref` (`oci:`, `oci-archive:`, `docker-archive:`, `containers-storage:`, `docker://`)
 * into `repo`. Runs {@link upgradeRepo} first. An image already complete in the repository (its
 * manifest stored and its default-format EROFS recorded) is only (re)tagged.
 *
 * @example
 * ```ts
 * const r = await pull(repo, "oci:/srv/layout:v1", { tag: "app", progress: ctx.progress });
 * console.log(r.imageId);
 * ```
 */
export async function pull(repo: Repository, imgref: string, opts: PullOptions = {}): Promise<PullResult> {
  const log = opts.log ?? (() => {});
  return await withContext(`pulling ${imgref}`, async () => {
    repo.checkWritable();
    const upgrade = await upgradeRepo(repo, log);
    const source = opts.source ?? await openSource(imgref, opts);
    try {
      return { ...await pullFrom(repo, source, opts, log), upgrade };
    } finally {
      source.close();
    }
  });
}

async function pullFrom(
  repo: Repository,
  source: ImageSource,
  opts: PullOptions,
  log: (m: string) => void,
): Promise<Omit<PullResult, "upgrade">> {
  const img = await loadImage(source);
  const manifestDigest = img.manifest.digest;
  const configDigest = img.parsed.config.digest;
  const container = img.config !== null;
  const keys = img.layers.map((l) => (container ? l.diffId! : l.descriptor.digest));
  const stats = emptyStats();
  const format = effectiveFormats(repo.meta).default;

  // Complete already: only the tag may be new (a fast no-op re-pull).
  const mverity = repo.hasStream(manifestContentId(manifestDigest));
  if (mverity) {
    const have = OciImage.open(repo, manifestDigest, mverity);
    const imageId = have.imageRef(format) ?? null;
    if (!container || (imageId && repo.hasObject(imageId))) {
      log(`already have ${manifestDigest}`);
      if (opts.tag !== undefined) tagImage(repo, manifestDigest, opts.tag);
      stats.layersAlreadyPresent = keys.length;
      return {
        manifestDigest,
        manifestVerity: mverity,
        configDigest,
        configVerity: have.configVerity,
        imageId: container ? imageId : null,
        alreadyPresent: true,
        layers: have.layerRefs.map(([key, verity]) => ({ key, verity, alreadyPresent: true })),
        stats,
      };
    }
  }

  const { layers, entryLogs } = await importLayers(repo, source, img.layers, keys, container, opts, stats, log);
  const refs: LayerRefs = layers.map((l) => [l.key, l.verity]);
  // The EROFS images come before the config and manifest, so both are written once, already
  // naming the images, and a failure here leaves no manifest (upstream writes, then rewrites).
  let imageId: ObjectId | null = null;
  let images: ImageRefs = {};
  if (container) {
    log(`building the filesystem of ${manifestDigest} and its EROFS image(s)`);
    ({ imageId, refs: images } = await withContext(
      "creating the composefs image",
      () => commitLayers(repo, refs.map(([, id]) => id), entryLogs),
    ));
  }
  // Boot images a previous pull's config recorded stay recorded.
  const previous = repo.hasStream(configContentId(configDigest));
  if (previous) {
    const boot = [...SplitStream.parse(repo.readObject(previous), repo.alg).namedRefs]
      .filter(([k]) => k.startsWith(BOOT_REF_PREFIX));
    if (boot.length) images = { ...images, boot: new Map(boot) };
  }
  const configVerity = writeConfigStream(repo, img.configBytes, refs, images);
  // Tagged last, with the manifest link.
  const manifestVerity = writeManifestStream(
    repo,
    img.manifest.bytes,
    manifestDigest,
    configDigest,
    configVerity,
    refs,
    opts.tag,
  );
  return { manifestDigest, manifestVerity, configDigest, configVerity, imageId, alreadyPresent: false, layers, stats };
}

async function importLayers(
  repo: Repository,
  source: ImageSource,
  infos: LayerInfo[],
  keys: Digest[],
  container: boolean,
  opts: PullOptions,
  stats: ImportStats,
  log: (m: string) => void,
): Promise<{ layers: PulledLayer[]; entryLogs: (EntryLog | undefined)[] }> {
  const out: PulledLayer[] = new Array(infos.length);
  const entryLogs: (EntryLog | undefined)[] = new Array(infos.length);
  const cstor = source instanceof ContainersStorageSource ? source : null;
  const localFetch = opts.localFetch ?? "auto";
  log(`importing ${infos.length} layer(s)`);
  const workers = new LayerWorkers();
  const job = (i: number) => async (free: () => void) => {
    const key = keys[i];
    const desc = infos[i].descriptor;
    const label = `layer ${key.slice(key.indexOf(":") + 1, key.indexOf(":") + 13)}`;
    await withContext(`layer ${key}`, async () => {
      const existing = repo.hasStream(layerContentId(key));
      if (existing) {
        opts.progress?.task(label, { unit: "bytes" }).done("exists");
        stats.layersAlreadyPresent++;
        out[i] = { key, verity: existing, alreadyPresent: true };
        return;
      }
      if (cstor && container && localFetch !== "disabled") {
        const task = opts.progress?.task(label, { unit: "items" });
        using _ = await cstor.store.lock();
        const r = await workers.import({
          kind: "storage",
          repoPath: repo.path,
          storeRoot: cstor.store.root,
          driver: cstor.store.driver,
          layer: cstor.layers[i].layer,
          zeroCopy: localFetch === "zerocopy",
        });
        addStats(stats, r.stats);
        task?.done(r.alreadyPresent ? "exists" : undefined);
        out[i] = { key, verity: r.id, alreadyPresent: r.alreadyPresent };
        return;
      }
      const size = cstor ? (cstor.layers[i].size ?? undefined) : desc.size;
      const task = opts.progress?.task(label, { total: size, unit: "bytes" });
      const onRead = (n: number) => task?.advance(n);
      let verity: ObjectId;
      if (isTarLayer(desc.mediaType) || container) {
        // Artifacts' tar layers are keyed by blob digest, which the source verifies.
        const job: BlobLayerJob = {
          kind: "blob",
          repoPath: repo.path,
          diffId: key,
          mediaType: desc.mediaType,
          verifyDiffId: container,
          limits: opts.decompressLimits,
        };
        // A blob that any thread can read (a local file, a registry) is read by the thread that
        // imports it: the calling thread would otherwise feed every worker besides its own import.
        job.location = await source.blobLocation?.(desc) ?? undefined;
        const blob = job.location ? undefined : counting(await source.getBlob(desc), onRead);
        const r = await workers.import(job, blob, onRead, free).catch(async (e) => {
          throw (await blobProblem(source, desc)) ?? e;
        });
        addStats(stats, r.stats);
        verity = r.id;
        entryLogs[i] = r.entries;
      } else {
        verity = await importBlob(repo, key, counting(await source.getBlob(desc), onRead));
        stats.layers++;
      }
      task?.done();
      out[i] = { key, verity, alreadyPresent: false };
    });
  };
  const order = infos.map((_, i) => i).sort((a, b) => infos[b].descriptor.size - infos[a].descriptor.size);
  const limit = opts.concurrency ?? Math.min(4, Math.max(1, navigator.hardwareConcurrency || 1));
  try {
    using _ = trimmingMalloc();
    // A thread that has no layer left stores files for one still importing.
    await bounded(order.map(job), limit, () => void workers.lend());
  } finally {
    workers.terminate();
    // What the imports allocated stays in V8's heap and glibc's per-thread arenas once freed (35
    // MiB and more after a large image) unless collected and handed back before the EROFS phase.
    fullGc();
    mallocTrim();
  }
  return { layers: out, entryLogs };
}
