/**
 * bootcfs's own containers-storage for unified pulls (bootc-layout.md §5): the store under the
 * target's physical root, next to the composefs repository, and a pull through a transient libpod
 * service against it that always stops.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { ProgressReporter, ProgressTask } from "../cli/progress.ts";
import type { PullEvent } from "./pull_stream.ts";
import { makePodmanDirs, podmanCommand, withPodmanService } from "./service.ts";

/** Where bootcfs keeps its containers-storage for a target root. */
export interface UnifiedStore {
  /** Graph root: `<root>/sysroot/composefs/bootc/storage` (bootc's `composefs/bootc/storage` of the physical root). */
  root: string;
  /**
   * Run root: `/run/bootcfs/<hash of the graph root>`, podman's socket inside it. podman gets it as
   * bootc passes its own (`/proc/self/fd/3`, the graph root as `/run/bootc/storage`): those are the
   * paths podman records in the store's database, so bootc and bootcfs share the store. A run root
   * per store keeps bootcfs runs for different roots apart.
   */
  runroot: string;
  /** The driver the store uses. */
  driver: "overlay";
}

/** The unified store of the system at `root` (`/` on a booted host). */
export function unifiedStore(root: string): UnifiedStore {
  const graph = `${root.replace(/\/+$/, "")}/sysroot/composefs/bootc/storage`;
  const tag = createHash("sha256").update(graph).digest("hex").slice(0, 16);
  return { root: graph, runroot: `/run/bootcfs/${tag}`, driver: "overlay" };
}

/**
 * The program and arguments that run `podman ARGS` on `store` the way the service of
 * {@link pullIntoStore} runs (bootc's paths), with the directories that needs made.
 */
export async function storePodman(store: UnifiedStore, args: string[], podman = "podman"): Promise<[string, string[]]> {
  await makePodmanDirs(store.root, store.runroot, true);
  return podmanCommand(podman, store.root, store.runroot, true, ["--storage-driver", store.driver, ...args]);
}

/** The `containers-storage:` reference of image `id` in `store`, for `pull()` of lib/oci. */
export function storeReference(store: UnifiedStore, id: string): string {
  return `containers-storage:[${store.driver}@${store.root}+${store.runroot}]${id}`;
}

/** Options of {@link pullIntoStore}. */
export interface StorePullOptions {
  tlsVerify?: boolean;
  authFile?: string;
  /** Architecture to pick from an index. */
  arch?: string;
  progress?: ProgressReporter;
  /** The service's stderr is appended here (default: only its tail is kept for errors). */
  logFile?: string;
  /** The podman binary (default `podman` from PATH). */
  podman?: string;
}

/**
 * Pulls `reference` (a registry reference, no transport) into `store` with a transient podman
 * service (stopped afterwards whatever happens) and returns the image id (config digest hex).
 */
export async function pullIntoStore(
  store: UnifiedStore,
  reference: string,
  opts: StorePullOptions = {},
): Promise<string> {
  return await withPodmanService(
    {
      root: store.root,
      runroot: store.runroot,
      storageDriver: store.driver,
      bootcPaths: true,
      logFile: opts.logFile,
      podman: opts.podman,
    },
    async (svc) => {
      const blobs = new Map<string, ProgressTask>();
      const finished = new Set<string>();
      const onProgress = (e: PullEvent) => {
        if (!opts.progress || e.kind !== "blob" || finished.has(e.digest)) return;
        const label = `blob ${e.digest.slice(e.digest.indexOf(":") + 1).slice(0, 12)}`;
        let task = blobs.get(e.digest);
        if (!task) {
          // podman 4.3 reports no byte counts: its blobs are counted as items.
          const total = e.total && e.total > 0 ? e.total : undefined;
          task = opts.progress.task(label, e.current === undefined ? { unit: "items" } : { unit: "bytes", total });
          blobs.set(e.digest, task);
        }
        if (e.total && e.total > 0) task.setTotal(e.total);
        if (e.current !== undefined) task.set(e.current);
        // podman 4.3 says "Copying blob" once per blob, when it is stored: that is the end of it.
        if (e.status !== "pulling") {
          task.done(e.status === "skipped" ? "exists" : undefined);
          finished.add(e.digest);
        }
      };
      const r = await svc.client.pull(reference, {
        tlsVerify: opts.tlsVerify,
        authFile: opts.authFile,
        arch: opts.arch,
        onProgress,
      });
      const info = await svc.client.inspect(r.id);
      return info.id;
    },
  );
}
