/**
 * `config-diff` and `usr-overlay`, then `upgrade --check`, `--download-only` and `--from-downloaded` on a booted deployment
 * (bootc-layout.md §3.3 steps 4 and 10, §2.3): the check reads the followed image's manifest and
 * prints ostree-ext's layer diff without pulling; a download-only deployment is staged with its
 * finalization locked, left alone by `composefs-finalize-staged`, and unlocked by
 * `--from-downloaded`.
 */
import assert from "node:assert/strict";
import { bootcfs } from "../helpers/cli.ts";
import { requireRoot, run, scratchDir } from "../helpers/fs.ts";
import { bootDeployment } from "../helpers/booted.ts";
import { buildTar } from "../../lib/tar/mod.ts";
import { d, f, osLayer } from "../helpers/os_image.ts";
import { gen, writeOciLayout } from "../helpers/oci.ts";

async function ok(args: string[]): Promise<string> {
  const r = await bootcfs(["--progress", "none", ...args]);
  assert.equal(r.code, 0, `bootcfs ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

Deno.test("config-diff, usr-overlay; upgrade --check, --download-only, --from-downloaded", async () => {
  requireRoot();
  await using scratch = await scratchDir();
  const physical = `${scratch.path}/disk`;
  const repo = `${physical}/composefs`;
  Deno.mkdirSync(physical);
  // Two layers: the OS and an application layer; the update replaces the application layer only.
  const layout = `${scratch.path}/os`;
  const base = { tar: osLayer(), compression: "gzip" as const };
  const app = (text: string) => ({
    tar: buildTar([d("usr/share/"), d("usr/share/app/"), f("usr/share/app/data", gen(30_000, text))]),
    compression: "gzip" as const,
  });
  const [v1] = await writeOciLayout(layout, { layers: [base, app("app-1")], tag: "t" });
  const image = `oci:${layout}:t`;
  const id1: string = JSON.parse(
    await ok(["install", "to-filesystem", "--source-imgref", image, "--root-mount-spec=", "--json", physical]),
  ).deployment;
  await using booted = await bootDeployment(physical, id1, `${scratch.path}/root`);
  const root = booted.root;

  // config-diff: the running /etc against the booted image's.
  assert.equal(await ok(["--root", root, "config-diff"]), "");
  Deno.writeTextFileSync(`${root}/etc/hostname`, "my-host\n");
  Deno.mkdirSync(`${root}/etc/local.d`);
  Deno.writeTextFileSync(`${root}/etc/local.d/a.conf`, "mine\n");
  Deno.removeSync(`${root}/etc/app/big.conf`);
  Deno.chmodSync(`${root}/etc/app`, 0o700);
  assert.equal(
    await ok(["--root", root, "config-diff"]),
    "Added: /etc/local.d\nAdded: /etc/local.d/a.conf\nModified: /etc/app\nModified: /etc/hostname\n" +
      "Removed: /etc/app/big.conf\n",
  );
  assert.deepEqual(JSON.parse(await ok(["--root", root, "config-diff", "--json"])), {
    added: ["local.d", "local.d/a.conf"],
    modified: ["app", "hostname"],
    removed: ["app/big.conf"],
  });

  // usr-overlay: a transient layer on /usr, read-write or read-only; status shows it.
  assert.equal(
    await ok(["--root", root, "usr-overlay"]),
    "A read/write overlayfs is now mounted on /usr\nAll changes there will be discarded on reboot.\n",
  );
  Deno.writeTextFileSync(`${root}/usr/share/app/tried`, "x\n");
  assert.ok(Deno.statSync(`${root}/run/bootcfs/usr-overlay/upper/share/app/tried`).isFile);
  let s = JSON.parse(await ok(["--root", root, "status", "--json"]));
  assert.deepEqual(s.status.usrOverlay, { accessMode: "readWrite", persistence: "transient" });
  assert.match(await ok(["--root", root, "usr-overlay"]), /usr is already a mount point; nothing done/);
  await run("umount", [`${root}/usr`]);
  assert.throws(() => Deno.statSync(`${root}/usr/share/app/tried`), Deno.errors.NotFound);
  await ok(["--root", root, "usr-overlay", "--read-only"]);
  assert.throws(() => Deno.writeTextFileSync(`${root}/usr/share/app/tried`, "x\n"), /Read-only file system/);
  s = JSON.parse(await ok(["--root", root, "status", "--json"]));
  assert.deepEqual(s.status.usrOverlay, { accessMode: "readOnly", persistence: "transient" });
  await run("umount", [`${root}/usr`]);

  assert.equal(await ok(["--root", root, "upgrade", "--check"]), `No changes in: ${image}\n`);

  Deno.removeSync(layout, { recursive: true });
  const [v2] = await writeOciLayout(layout, {
    layers: [base, app("app-2")],
    tag: "t",
    config: { config: { Labels: { version: "2.0" } } },
  });
  const objectsBefore = names(`${repo}/objects`).length;
  const check = await ok(["--root", root, "upgrade", "--check"]);
  const [oldApp, newApp] = [v1.layers[1].size, v2.layers[1].size];
  const size = (n: number) => n < 1000 ? `${n} bytes` : `${(n / 1000).toFixed(1)} kB`;
  assert.equal(
    check,
    `Update available for: ${image}\n  Version: 2.0\n  Digest: ${v2.manifest.digest}\n` +
      `Total new layers: 2     Size: ${size(v2.layers[0].size + newApp)}\n` +
      `Removed layers:   1     Size: ${size(oldApp)}\n` +
      `Added layers:     1     Size: ${size(newApp)}\n`,
  );
  const checkJson = JSON.parse(await ok(["--root", root, "upgrade", "--check", "--json"]));
  assert.deepEqual(checkJson.diff, {
    total: 2,
    totalSize: v2.layers[0].size + newApp,
    removed: 1,
    removedSize: oldApp,
    added: 1,
    addedSize: newApp,
  });
  // A check pulls and stages nothing.
  assert.equal(names(`${repo}/objects`).length, objectsBefore);
  assert.deepEqual(names(`${physical}/state/deploy`), [id1]);
  assert.throws(() => Deno.statSync(`${root}/run/composefs/staged-deployment`), Deno.errors.NotFound);

  const usage = await bootcfs(["--root", root, "upgrade", "--check", "--download-only"]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--check and --download-only exclude each other/);
  const nothing = await bootcfs(["--progress", "none", "--root", root, "upgrade", "--from-downloaded"]);
  assert.equal(nothing.code, 1);
  assert.match(nothing.stderr, /No staged deployment found/);

  // Download-only: staged, locked; shutdown leaves it alone.
  const staged = JSON.parse(await ok(["--root", root, "upgrade", "--download-only", "--json"]));
  assert.equal(staged.downloadOnly, true);
  const id2: string = staged.deployment;
  const marker = `${root}/run/composefs/staged-deployment`;
  assert.equal(Deno.readTextFileSync(marker), `{"depl_id":"${id2}","finalization_locked":true}`);
  s = JSON.parse(await ok(["--root", root, "status", "--json"]));
  assert.equal(s.status.staged.composefs.verity, id2);
  assert.equal(s.status.staged.downloadOnly, true);
  const loader = `${physical}/boot/loader`;
  const live = names(`${loader}/entries`);
  const fin = JSON.parse(await ok(["--root", root, "composefs-finalize-staged", "--json"]));
  assert.deepEqual(fin, { finalized: false, reason: "Staged deployment is marked download only. Won't finalize" });
  assert.deepEqual(names(`${loader}/entries`), live);
  assert.ok(Deno.statSync(`${loader}/entries.staged`).isDirectory);

  // --from-downloaded unlocks it; a second time there is nothing to unlock.
  assert.match(await ok(["--root", root, "upgrade", "--from-downloaded"]), /no longer download-only/);
  assert.equal(Deno.readTextFileSync(marker), `{"depl_id":"${id2}","finalization_locked":false}`);
  s = JSON.parse(await ok(["--root", root, "status", "--json"]));
  assert.equal(s.status.staged.downloadOnly, false);
  assert.equal(
    await ok(["--root", root, "upgrade", "--from-downloaded"]),
    "Staged deployment is present and not in download only mode.\n" +
      "Use `bootcfs composefs-finalize-staged` at shutdown (bootc: `bootc update --apply`) to apply it.\n",
  );
  assert.equal((JSON.parse(await ok(["--root", root, "composefs-finalize-staged", "--json"]))).finalized, true);
  assert.match(Deno.readTextFileSync(`${loader}/entries/${names(`${loader}/entries`).at(-1)}`), new RegExp(id2));
});
