/**
 * Deployment GC as the host commands run it (bootc-layout.md §3.11): after staging, after
 * `delete-deployment`, and from `internals composefs-gc`; and its report, in bootc's words.
 *
 * @module
 */
import type { Context } from "../cli/command.ts";
import { physicalRootOf } from "../boot/host.ts";
import { withContext } from "../error/mod.ts";
import { collectDeployments, type DeploymentGcResult } from "../deploy/gc.ts";
import type { Host } from "../deploy/status.ts";
import type { Repository } from "../repository/mod.ts";
import { erofsImageObjects } from "./repo.ts";

/** Collects what no deployment of the system at `--root` uses; `host` is its status. */
export function collectUnused(
  ctx: Context,
  repo: Repository,
  host: Host,
  o: { pruneRepo: boolean; dryRun?: boolean },
): Promise<DeploymentGcResult> {
  return withContext("collecting unused deployments", () =>
    collectDeployments({
      root: ctx.globals.root,
      physical: physicalRootOf(ctx.globals.root),
      booted: host.status.booted?.composefs.verity ?? null,
      repo,
      imageObjects: erofsImageObjects,
      pruneRepo: o.pruneRepo,
      dryRun: o.dryRun,
      warn: (m) => ctx.log.warn(m, { "bootc.operation": "gc" }),
    }));
}

/** Whether `r` removed (or would remove) anything at all. */
export function removedAnything(r: DeploymentGcResult): boolean {
  const repo = r.repo;
  return r.kernels.length + r.stateDirs.length + r.untagged.length > 0 ||
    (repo !== null && repo.objectsRemoved + repo.imagesPruned + repo.streamsPruned > 0);
}

/** The lines `internals composefs-gc` prints for `r`: bootc's, then one per kernel, state directory and tag. */
export function gcReport(r: DeploymentGcResult, dryRun: boolean): string[] {
  const lines: string[] = [];
  if (dryRun) lines.push("Dry run (no files deleted)");
  const verb = dryRun ? "would remove" : "removed";
  for (const k of r.kernels) lines.push(`${verb} kernel bootc_composefs-${k}`);
  for (const id of r.stateDirs) lines.push(`${verb} the state of deployment ${id}`);
  for (const t of r.tagged) lines.push(`${dryRun ? "would tag" : "tagged"} ${t}`);
  for (const t of r.untagged) lines.push(`${dryRun ? "would untag" : "untagged"} ${t}`);
  const repo = r.repo ?? { objectsRemoved: 0, bytesFreed: 0, imagesPruned: 0, streamsPruned: 0 };
  lines.push(`Objects: ${repo.objectsRemoved} removed (${repo.bytesFreed} bytes)`);
  if (repo.imagesPruned + repo.streamsPruned > 0) {
    lines.push(`Pruned symlinks: ${repo.imagesPruned} images, ${repo.streamsPruned} streams`);
  }
  return lines;
}
