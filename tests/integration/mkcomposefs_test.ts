/**
 * `bootcfs mkcomposefs` from a real directory: the golden tree re-created on disk must give the
 * C images and objects of vectors/erofs byte for byte (needs root: device nodes, trusted xattrs).
 */
import assert from "node:assert/strict";
import { chooseVersion, writeImage } from "../../lib/erofs/mod.ts";
import { digestFileSync, toHex } from "../../lib/fsverity/mod.ts";
import { treeFromDirectory } from "../../lib/tree/fromdir.ts";
import { makeGoldenTree } from "../helpers/golden_tree.ts";
import { objectNames } from "../helpers/oci.ts";
import { REPO_ROOT, VECTORS } from "../helpers/paths.ts";

const EROFS = `${VECTORS}/erofs`;

function bootcfs(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", `${REPO_ROOT}/main.ts`, ...args],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

Deno.test("the golden directory gives the C images and objects", () => {
  const tmp = Deno.makeTempDirSync({ prefix: "bootcfs-mkcfs-" });
  try {
    makeGoldenTree(`${tmp}/src`);
    const root = treeFromDirectory(`${tmp}/src`, { digestStore: `${tmp}/objects` });
    const img = writeImage(root, { version: chooseVersion(root, 0, 1) });
    assert.deepEqual(img, Deno.readFileSync(`${EROFS}/default.cfs`));
    const objects = objectNames(tmp);
    assert.deepEqual(objects, Deno.readTextFileSync(`${EROFS}/objects.txt`).trim().split("\n"));
    for (const o of objects) {
      assert.equal(toHex(digestFileSync(`${tmp}/objects/${o}`, "sha256")), o.replace("/", ""));
    }

    const digests = new Map(
      Deno.readTextFileSync(`${EROFS}/digests.txt`).trim().split("\n").map((l) => l.split(" ") as [string, string]),
    );
    const cases: Array<[string[], string]> = [
      [[], digests.get("default")!],
      [["--max-version", "0"], digests.get("v0")!],
      [["--skip-xattrs"], digests.get("skip-xattrs")!],
      [["--user-xattrs"], digests.get("user-xattrs")!],
      [["--skip-devices"], digests.get("skip-devices")!],
      // Last, so that out.cfs is the epoch image the dump below is compared with.
      [["--use-epoch"], digests.get("epoch")!],
    ];
    for (const [opts, want] of cases) {
      const r = bootcfs("mkcomposefs", "--print-digest", ...opts, `${tmp}/src`, `${tmp}/out.cfs`);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, want + "\n", opts.join(" "));
    }
    const dump = bootcfs("dump", `${tmp}/out.cfs`);
    assert.equal(dump.code, 0, dump.stderr);
    assert.equal(dump.stdout, Deno.readTextFileSync(`${EROFS}/epoch.dump`));
  } finally {
    Deno.removeSync(tmp, { recursive: true });
  }
});

Deno.test("mkcomposefs --from-file reads stdin and writes stdout like the C tool", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", `${REPO_ROOT}/main.ts`, "mkcomposefs", "--from-file", "-", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(Deno.readFileSync(`${EROFS}/hardlinks.dump`));
  await w.close();
  const out = await child.output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.deepEqual(out.stdout, Deno.readFileSync(`${EROFS}/hardlinks.cfs`));
  const bad = bootcfs("mkcomposefs", "--min-version", "3", `${EROFS}/v0.dump`, "/dev/null");
  assert.equal(bad.code, 2);
});
