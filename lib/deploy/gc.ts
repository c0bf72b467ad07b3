/**
 * Garbage collection of deployments (bootc-layout.md §3.11, `composefs_gc` with `prune_repo`),
 * following the ownership chain boot entry → state directory → origin → manifest → bootc tag →
 * everything the image keeps alive: kernel directories no entry loads are deleted, state
 * directories no entry names ("interrupted deployments") too, every `localhost/bootc-<digest>` tag
 * no deployment's origin names is removed (other tags are never touched), and the repository is
 * collected with each deployment's boot image as an extra root. Entries without a state
 * directory are left alone, as upstream (§10.9). GRUB Type-1 menus only, as staging.
 *
 * @module
 */
import { underRoot } from "../boot/host.ts";
import { readAllEntries } from "../boot/menu_dir.ts";
import { withContextSync } from "../error/mod.ts";
import { parseDigest } from "../oci/digest.ts";
import { listTags, tagImage, untagImage } from "../oci/store.ts";
import { gc, type GcResult, type ImageObjects, type Repository } from "../repository/mod.ts";
import { fsyncDir } from "../runtime/durable.ts";
import { exists, readTextIfExists, removeIfExists } from "../runtime/files.ts";
import { removeUnusedKernels } from "./kernel.ts";
import { parseOrigin } from "./origin.ts";
import { blsVerity } from "./status.ts";
import { readStagedMarker, STAGED_MARKER } from "./status_read.ts";

/** bootc's GC-root tags start with this; the rest is the manifest digest. */
const BOOTC_TAG = "localhost/bootc-";

/** What {@link collectDeployments} removed. */
export interface DeploymentGcResult {
  kernels: string[];
  stateDirs: string[];
  untagged: string[];
  repo: GcResult;
}

/**
 * Collects what no deployment of the system at `root` (physical root `physical`) uses. `booted`
 * (null when the system is not booted) must survive, else the state is inconsistent: an error.
 */
export async function collectDeployments(o: {
  root: string;
  physical: string;
  booted: string | null;
  repo: Repository;
  imageObjects: ImageObjects;
}): Promise<DeploymentGcResult> {
  const bootDir = `${o.physical}/boot`;
  const entries = readAllEntries(`${bootDir}/loader`);
  const kernels = removeUnusedKernels(bootDir, entries, o.booted);
  const named = new Set(entries.map(([path, e]) => withContextSync(`boot entry ${path}`, () => blsVerity(e))));
  const deployDir = `${o.physical}/state/deploy`;
  const stateDirs = exists(deployDir)
    ? [...Deno.readDirSync(deployDir)].filter((e) => e.isDirectory && !named.has(e.name)).map((e) => e.name).sort()
    : [];
  if (o.booted !== null && stateDirs.includes(o.booted)) {
    throw new Error(`Inconsistent state: no boot entry names the booted deployment ${o.booted}`);
  }
  const marker = readStagedMarker(o.root);
  for (const id of stateDirs) {
    if (marker?.deplId === id) removeIfExists(underRoot(o.root, STAGED_MARKER));
    Deno.removeSync(`${deployDir}/${id}`, { recursive: true });
  }
  if (stateDirs.length > 0) fsyncDir(deployDir);

  const live = new Set<string>();
  const roots: string[] = [];
  for (const id of named) {
    const text = readTextIfExists(`${deployDir}/${id}/${id}.origin`);
    if (text === null) continue;
    roots.push(id);
    const digest = withContextSync(`reading the origin of ${id}`, () => parseOrigin(text)).manifestDigest;
    if (digest === undefined) continue;
    live.add(digest);
    // Deployments from before the tags existed get theirs now (§3.11 step 9).
    tagImage(o.repo, parseDigest(digest), `${BOOTC_TAG}${digest}`);
  }
  const untagged = listTags(o.repo)
    .filter((t) => t.name.startsWith(BOOTC_TAG) && !live.has(t.digest))
    .map((t) => t.name);
  for (const name of untagged) untagImage(o.repo, name);
  const repo = await gc(o.repo, { roots, imageObjects: o.imageObjects });
  return { kernels, stateDirs, untagged, repo };
}
