/**
 * A deployment "booted" into a directory the way the initramfs sets up `/` (bootc-layout.md
 * §1.10): the deployment's composefs image mounted at ROOT with source `composefs:<id>`, the
 * physical root bind-mounted at ROOT/sysroot, the deployment's `etc` at ROOT/etc, the shared
 * `var` at ROOT/var, and a fresh tmpfs at ROOT/run. `bootcfs --root ROOT …` then sees a booted
 * system, as `bootcfs …` does on a real one. Root only.
 *
 * @module
 */
import { mountComposefs } from "../../lib/mount/mod.ts";
import { run, unmountAllUnder } from "./fs.ts";

/** A booted deployment; disposing it unmounts everything (a "shutdown"). */
export interface BootedRoot extends AsyncDisposable {
  readonly root: string;
}

/** Boots deployment `id` of the physical root `physical` at the directory `root` (created if missing). */
export async function bootDeployment(physical: string, id: string, root: string): Promise<BootedRoot> {
  Deno.mkdirSync(root, { recursive: true });
  mountComposefs(root, {
    image: `${physical}/composefs/images/${id}`,
    objectDirs: [`${physical}/composefs/objects`],
    insecure: true,
    source: `composefs:${id}`,
  });
  const binds: [string, string][] = [
    [physical, "sysroot"],
    [`${physical}/state/deploy/${id}/etc`, "etc"],
    [`${physical}/state/os/default/var`, "var"],
  ];
  try {
    for (const [from, to] of binds) await run("mount", ["--bind", from, `${root}/${to}`]);
    await run("mount", ["-t", "tmpfs", "tmpfs", `${root}/run`]);
  } catch (e) {
    await unmountAllUnder(root);
    throw e;
  }
  return {
    root,
    async [Symbol.asyncDispose]() {
      await unmountAllUnder(root);
    },
  };
}
