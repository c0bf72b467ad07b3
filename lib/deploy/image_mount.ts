/**
 * A deployment's image mounted for a moment, as bootc mounts the booted image to read its pristine
 * `/etc` (bootc-layout.md §3.5 step 7, §3.8 step 3): read-only, on a private temporary
 * directory, unmounted and removed afterwards whatever happens.
 *
 * @module
 */
import { withContext } from "../error/mod.ts";
import { mountComposefs, unmountComposefs } from "../mount/mod.ts";

/**
 * Runs `fn` with deployment `id` of the repository at `repoDir` mounted (its path as the
 * argument). `insecure`: fs-verity is not enforced (the repository or the kernel lacks it).
 */
export async function withDeploymentMounted<T>(
  repoDir: string,
  id: string,
  insecure: boolean,
  fn: (mountPoint: string) => T | Promise<T>,
): Promise<T> {
  const dir = Deno.makeTempDirSync({ prefix: "bootcfs-deployment-" });
  try {
    return await withContext(`reading deployment ${id}`, async () => {
      mountComposefs(dir, {
        image: `${repoDir}/images/${id}`,
        objectDirs: [`${repoDir}/objects`],
        insecure,
        expectedDigest: id,
      });
      try {
        return await fn(dir);
      } finally {
        unmountComposefs(dir, { lazy: true });
      }
    });
  } finally {
    Deno.removeSync(dir);
  }
}
