/**
 * Garbage collection of deployments (bootc-layout.md §3.11, `composefs_gc`), following the
 * ownership chain boot entry → state directory → origin → manifest → bootc tag → everything the
 * image keeps alive. Kernel directories no entry loads are deleted; with `pruneRepo`, so are
 * state directories no entry names ("interrupted deployments"), every `localhost/bootc-<digest>`
 * tag no deployment's origin names (other tags are never touched), and the objects only those
 * kept, each deployment's boot image being an extra root. Entries without a state directory
 * ("interrupted cleanups") are left alone, as upstream (§10.9). GRUB Type-1 menus only, as staging.
 *
 * @module
 */
import { underRoot } from "../boot/host.ts";
import { readAllEntries } from "../boot/menu_dir.ts";
import { withContextSync } from "../error/mod.ts";
import { type Digest, parseDigest } from "../oci/digest.ts";
import { listTags, OciImage, tagImage, untagImage } from "../oci/store.ts";
import { gc, type GcResult, type ImageObjects, type Repository } from "../repository/mod.ts";
import { fsyncDir } from "../runtime/durable.ts";
import { exists, readTextIfExists, removeIfExists } from "../runtime/files.ts";
import { removeUnusedKernels } from "./kernel.ts";
import { parseOrigin } from "./origin.ts";
import { blsVerity } from "./status.ts";
import { readStagedMarker, STAGED_MARKER } from "./status_read.ts";

/** bootc's GC-root tags start with this; the rest is the manifest digest. */
const BOOTC_TAG = "localhost/bootc-";

/** What {@link collectDeployments} needs. */
export interface DeploymentGcOptions {
  /** The system's root (where `/run` is). */
  root: string;
  /** Its physical root (where `boot/`, `state/` and `composefs/` are). */
  physical: string;
  /** The booted deployment, which must survive; null when the system is not booted. */
  booted: string | null;
  repo: Repository;
  imageObjects: ImageObjects;
  /** Past the kernels: state directories, tags and objects (stage and delete-deployment; not finalize). */
  pruneRepo: boolean;
  /** Report what would go and delete nothing; tags are neither added nor removed. */
  dryRun?: boolean;
  /** Receives warnings (a deployment whose image metadata cannot be found). */
  warn?: (message: string) => void;
}

/** What {@link collectDeployments} removed (with `dryRun`: would remove). */
export interface DeploymentGcResult {
  kernels: string[];
  stateDirs: string[];
  /** Tags added for deployments from before bootc tagged its images (§3.11 step 9). */
  tagged: string[];
  untagged: string[];
  /** Null without `pruneRepo`. With `dryRun`, objects that only the `untagged` tags keep are not counted. */
  repo: GcResult | null;
}

/** The manifest digest of the tagged image one of whose EROFS images is `id`, or undefined. */
function taggedImageWith(repo: Repository, tags: { digest: Digest }[], id: string): Digest | undefined {
  for (const t of tags) {
    let img: OciImage;
    try {
      img = OciImage.open(repo, t.digest);
    } catch {
      continue; // a broken tag is not this deployment's
    }
    const ids = [img.images.v1, img.images.v2, ...img.images.boot.values()];
    if (ids.some((x) => x === id)) return t.digest;
  }
  return undefined;
}

/**
 * Collects what no deployment of the system at `o.root` uses. The booted deployment must keep its
 * entry, state directory and kernel, else the state is inconsistent: an error, before any deletion.
 */
export async function collectDeployments(o: DeploymentGcOptions): Promise<DeploymentGcResult> {
  const dryRun = o.dryRun ?? false;
  const bootDir = `${o.physical}/boot`;
  const entries = readAllEntries(`${bootDir}/loader`);
  const named = new Set(entries.map(([path, e]) => withContextSync(`boot entry ${path}`, () => blsVerity(e))));
  const deployDir = `${o.physical}/state/deploy`;
  const withState = exists(deployDir)
    ? [...Deno.readDirSync(deployDir)].filter((e) => e.isDirectory).map((e) => e.name)
    : [];
  const stateDirs = withState.filter((id) => !named.has(id)).sort();
  const orphanEntries = [...named].filter((id) => !withState.includes(id));
  if (o.booted !== null && stateDirs.includes(o.booted)) {
    throw new Error(`Inconsistent state: no boot entry names the booted deployment ${o.booted}`);
  }
  if (o.pruneRepo && o.booted !== null && orphanEntries.includes(o.booted)) {
    throw new Error(`Inconsistent state: the booted deployment ${o.booted} has no state directory`);
  }
  const kernels = removeUnusedKernels(bootDir, entries, o.booted, dryRun);
  if (!o.pruneRepo) return { kernels, stateDirs: [], tagged: [], untagged: [], repo: null };

  if (!dryRun) {
    const marker = readStagedMarker(o.root);
    if (marker !== null && (stateDirs.includes(marker.deplId) || orphanEntries.includes(marker.deplId))) {
      removeIfExists(underRoot(o.root, STAGED_MARKER));
    }
    for (const id of stateDirs) Deno.removeSync(`${deployDir}/${id}`, { recursive: true });
    if (stateDirs.length > 0) fsyncDir(deployDir);
  }

  const tags = listTags(o.repo);
  const live = new Set<string>();
  const roots: string[] = [];
  const tagged: string[] = [];
  for (const id of [...named].filter((id) => withState.includes(id)).sort()) {
    roots.push(id);
    const text = readTextIfExists(`${deployDir}/${id}/${id}.origin`);
    const origin = text === null ? null : withContextSync(`reading the origin of ${id}`, () => parseOrigin(text));
    // Deployments from before origins named their manifest: found by their image id (§3.11 step 8).
    const digest = origin?.manifestDigest ?? taggedImageWith(o.repo, tags, id);
    if (digest === undefined) {
      o.warn?.(`deployment ${id}: EROFS image is protected but OCI metadata may be collected`);
      continue;
    }
    live.add(digest);
    const tag = `${BOOTC_TAG}${digest}`;
    if (tags.some((t) => t.name === tag)) continue;
    tagged.push(tag);
    if (!dryRun) tagImage(o.repo, parseDigest(digest), tag);
  }
  const untagged = tags
    .filter((t) => t.name.startsWith(BOOTC_TAG) && !live.has(t.digest))
    .map((t) => t.name);
  if (!dryRun) { for (const name of untagged) untagImage(o.repo, name); }
  const repo = await gc(o.repo, { roots, imageObjects: o.imageObjects, dryRun });
  return { kernels, stateDirs, tagged, untagged, repo };
}
