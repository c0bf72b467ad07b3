/**
 * `pull()` and the `oci` commands end to end (oci-and-boot.md §3, §5, §7): multi-layer images
 * with whiteouts, opaque directories and hardlinks; the same image id from every local transport
 * (podman-built image saved as OCI layout, oci-archive, docker-archive, and read from
 * containers-storage); post-rewrite verities; re-pull no-op; interrupted imports (failing source,
 * killed process); GC with and without tags; upgrade of "old" repositories; CLI output.
 */
import assert from "node:assert/strict";
import { erofsImageObjects } from "../../lib/commands/repo.ts";
import { errorChain } from "../../lib/error/mod.ts";
import { pull } from "../../lib/oci/pull.ts";
import type { ImageSource } from "../../lib/oci/source.ts";
import {
  listTags,
  OciImage,
  tagImage,
  untagImage,
  writeConfigStream,
  writeManifestStream,
} from "../../lib/oci/store.ts";
import { upgradeRepo } from "../../lib/oci/upgrade.ts";
import { openImageSource } from "../../lib/oci/open.ts";
import { type ErofsFormats, gc, Repository } from "../../lib/repository/mod.ts";
import { buildTar, type TarBuildItem, type TarWriteEntry } from "../../lib/tar/mod.ts";

import { bootcfs, run, spawnBootcfs } from "../helpers/cli.ts";
import { fakeRegistry } from "../helpers/fake_registry.ts";
import { requireRoot, scratchDir } from "../helpers/fs.ts";
import { gen, objectNames, podmanStorage, sha256, writeOciLayout } from "../helpers/oci.ts";

const te = new TextEncoder();

function newRepo(path: string, alg: "sha256" | "sha512" = "sha512", formats: ErofsFormats = { default: 1, extra: [] }) {
  return Repository.init(path, { alg, formats, insecure: true }).repo;
}

/** Three layers: base; whiteout, opaque dir, cross-layer hardlink, replaced file; big file + in-layer hardlink. */
function layeredTars(): Uint8Array[] {
  const dir = (path: string, mode = 0o755): TarBuildItem => ({ entry: { path, kind: "dir", mode, mtime: 1700000000 } });
  const file = (path: string, data: Uint8Array, extra: Partial<TarWriteEntry> = {}): TarBuildItem => ({
    entry: { path, kind: "file", mtime: 1700000000, ...extra },
    data,
  });
  const l1 = buildTar([
    dir("usr"),
    dir("usr/bin"),
    file("usr/bin/tool", gen(5000, "tool"), { mode: 0o755, xattrs: { "security.capability": gen(20, "cap") } }),
    { entry: { path: "usr/bin/sh", kind: "symlink", linkTarget: "tool", mtime: 1700000000 } },
    dir("usr/lib"),
    file("usr/lib/libx.so", gen(70, "libx")),
    dir("usr/share"),
    dir("usr/share/doc"),
    file("usr/share/doc/a", gen(64, "a")),
    file("usr/share/doc/b", gen(65, "b")),
    dir("etc"),
    file("etc/hosts", te.encode("127.0.0.1 localhost\n")),
    dir("etc/conf.d"),
    file("etc/conf.d/1.conf", gen(100, "c1")),
    file("etc/conf.d/2.conf", gen(100, "c2")),
    dir("run"),
    file("run/cache", gen(10, "cache")),
  ]);
  const l2 = buildTar([
    dir("etc", 0o750),
    file("etc/.wh.hosts", new Uint8Array()),
    dir("usr/share/doc"),
    file("usr/share/doc/.wh..wh..opq", new Uint8Array()),
    file("usr/share/doc/c", gen(300, "c")),
    { entry: { path: "usr/bin/tool2", kind: "hardlink", linkTarget: "usr/bin/tool", mtime: 1700000000 } },
    file("etc/conf.d/2.conf", gen(200, "c2-new")),
  ]);
  const l3 = buildTar([
    file("usr/lib/big", gen(1 << 20, "big")),
    { entry: { path: "usr/lib/big.link", kind: "hardlink", linkTarget: "usr/lib/big", mtime: 1700000000 } },
    file("etc/conf.d/.wh.1.conf", new Uint8Array()),
  ]);
  return [l1, l2, l3];
}

async function writeLayered(dir: string, tag = "v1") {
  const [l1, l2, l3] = layeredTars();
  return (await writeOciLayout(dir, {
    layers: [{ tar: l1, compression: "gzip" }, { tar: l2, compression: "zstd" }, { tar: l3, compression: "none" }],
    tag,
  }))[0];
}

Deno.test("pull: multi-layer OCI layout; PullResult reports post-rewrite verities (upstream returns stale ones)", async () => {
  await using dir = await scratchDir();
  const img = await writeLayered(`${dir.path}/layout`);
  const repo = newRepo(`${dir.path}/repo`);
  try {
    const r = await pull(repo, `oci:${dir.path}/layout:v1`, { tag: "app" });
    assert.equal(r.manifestDigest, img.manifest.digest);
    assert.equal(r.configDigest, img.config.digest);
    assert.deepEqual(r.layers.map((l) => l.key), img.layers.map((l) => l.diffId));
    assert.equal(r.stats.layers, 3);
    // What streams/ names after the EROFS rewrite, read with Deno, not our code.
    const link = (n: string) =>
      Deno.readLinkSync(`${repo.path}/streams/${n}`).replace("../objects/", "").replace("/", "");
    assert.equal(r.manifestVerity, link(`oci-manifest-${r.manifestDigest}`));
    assert.equal(r.configVerity, link(`oci-config-${r.configDigest}`));
    assert.equal(
      Deno.readLinkSync(`${repo.path}/streams/refs/oci/app`),
      `../../oci-manifest-${r.manifestDigest}`,
    );
    assert.ok(r.imageId);
    assert.equal(
      Deno.readLinkSync(`${repo.path}/images/${r.imageId}`),
      `../objects/${r.imageId.slice(0, 2)}/${r.imageId.slice(2)}`,
    );
    const opened = OciImage.openTag(repo, "app");
    assert.equal(opened.imageRef(1), r.imageId);
    assert.equal(opened.configVerity, r.configVerity);
    // The EROFS image is valid for the reference checker.
    await run("fsck.erofs", [`${repo.path}/images/${r.imageId}`]);
    // Every layer stream reassembles to its diff_id (checked with node:crypto).
    for (const l of r.layers) {
      const parts: Uint8Array[] = [];
      await repo.catStream(`oci-layer-${l.key}`, new WritableStream({ write: (c) => void parts.push(c) }).getWriter());
      const all = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
      parts.reduce((o, p) => (all.set(p, o), o + p.length), 0);
      assert.equal(sha256(all), l.key);
    }
  } finally {
    repo.close();
  }
});

Deno.test("pull: the image id is stable across runs and repositories; re-pull is a fast no-op", async () => {
  await using dir = await scratchDir();
  await writeLayered(`${dir.path}/layout`);
  const ids: string[] = [];
  for (const n of [1, 2]) {
    const repo = newRepo(`${dir.path}/repo${n}`);
    try {
      ids.push((await pull(repo, `oci:${dir.path}/layout:v1`, { tag: "a" })).imageId!);
    } finally {
      repo.close();
    }
  }
  assert.equal(ids[0], ids[1]);
  const repo = Repository.open(`${dir.path}/repo1`);
  try {
    const before = objectNames(repo.path).length;
    const t0 = performance.now();
    const again = await pull(repo, `oci:${dir.path}/layout:v1`, { tag: "b" });
    const ms = performance.now() - t0;
    assert.equal(again.alreadyPresent, true);
    assert.equal(again.imageId, ids[0]);
    assert.equal(again.stats.layers, 0);
    assert.equal(objectNames(repo.path).length, before, "nothing new stored");
    assert.deepEqual(listTags(repo).map((t) => t.name).sort(), ["a", "b"]);
    assert.ok(ms < 2000, `re-pull took ${ms.toFixed(0)} ms`);
  } finally {
    repo.close();
  }
});

Deno.test("pull: same image id from oci:, oci-archive:, docker-archive: and containers-storage: (both fetch modes)", async () => {
  requireRoot();
  await using dir = await scratchDir();
  await using pm = await podmanStorage();
  await pm.buildScratch(
    "localhost/same:1",
    {
      "usr/bin/tool": gen(5000, "t"),
      "usr/lib/small": "tiny\n",
      "etc/os-release": "ID=test\n",
      "etc/big": gen(200_000, "big"),
    },
    ["COPY rootfs/usr/lib /usr/lib2"],
  );
  await pm.podman(["save", "--format", "oci-dir", "-o", `${dir.path}/ocidir`, "localhost/same:1"]);
  await pm.podman(["save", "--format", "oci-archive", "-o", `${dir.path}/oci.tar`, "localhost/same:1"]);
  await pm.podman(["save", "--format", "docker-archive", "-o", `${dir.path}/docker.tar`, "localhost/same:1"]);
  const cstor = `containers-storage:[vfs@${pm.dir}/root+${pm.dir}/run]localhost/same:1`;
  const cases: [string, "auto" | "disabled" | undefined][] = [
    [`oci:${dir.path}/ocidir`, undefined],
    [`oci-archive:${dir.path}/oci.tar`, undefined],
    [`docker-archive:${dir.path}/docker.tar`, undefined],
    [cstor, "auto"],
    [cstor, "disabled"],
  ];
  const results = [];
  for (const [i, [ref, localFetch]] of cases.entries()) {
    const repo = newRepo(`${dir.path}/repo${i}`);
    try {
      const r = await pull(repo, ref, { tag: "x", localFetch });
      results.push({ ref, imageId: r.imageId, layers: r.layers.map((l) => `${l.key}=${l.verity}`) });
    } finally {
      repo.close();
    }
  }
  for (const r of results) {
    assert.equal(r.imageId, results[0].imageId, r.ref);
    assert.deepEqual(r.layers, results[0].layers, `${r.ref}: identical layer splitstreams`);
  }
  assert.equal(results[0].layers.length, 2);
});

/** A source whose blob `failDigest` breaks after half of its bytes. */
function failingSource(inner: ImageSource, failDigest: string): ImageSource {
  return {
    getManifest: () => inner.getManifest(),
    async getBlob(d) {
      const s = await inner.getBlob(d);
      if (d.digest !== failDigest) return s;
      async function* broken() {
        let n = 0;
        const half = Math.floor(d.size / 2);
        for await (const c of s) {
          if (n + c.length > half) {
            yield c.slice(0, half - n);
            throw new Error("connection reset (test)");
          }
          n += c.length;
          yield c;
        }
      }
      return ReadableStream.from(broken());
    },
    close: () => inner.close(),
  };
}

Deno.test("pull: a layer failing mid-stream leaves nothing tagged; the next pull reuses the finished layers", async () => {
  await using dir = await scratchDir();
  const [l1, l2, l3] = layeredTars();
  // The smallest layer, so with one layer at a time (largest first) it is the last one fetched.
  const small = buildTar([{ entry: { path: "usr/lib/more", kind: "file" }, data: gen(100, "more") }]);
  const img = (await writeOciLayout(`${dir.path}/layout`, {
    layers: [l1, l2, l3, small].map((tar) => ({ tar, compression: "gzip" as const })),
    tag: "v1",
  }))[0];
  const repo = newRepo(`${dir.path}/repo`);
  try {
    const ref = `oci:${dir.path}/layout:v1`;
    const last = img.layers[3].digest;
    await assert.rejects(
      async () =>
        pull(repo, ref, { tag: "app", source: failingSource(await openImageSource(ref), last), concurrency: 1 }),
      (e: Error) => errorChain(e).includes("connection reset (test)"),
    );
    assert.deepEqual(listTags(repo), []);
    assert.equal(repo.hasStream(`oci-manifest-${img.manifest.digest}`), null);
    assert.equal(repo.hasStream(`oci-layer-${img.layers[3].diffId}`), null);
    const r = await pull(repo, ref, { tag: "app" });
    assert.equal(r.stats.layersAlreadyPresent, 3);
    assert.equal(r.stats.layers, 1);
    assert.deepEqual(listTags(repo).map((t) => t.name), ["app"]);
  } finally {
    repo.close();
  }
});

Deno.test("pull: a killed `bootcfs oci pull` leaves nothing tagged; pulling again succeeds and fsck is clean", async () => {
  await using dir = await scratchDir();
  // 192 MiB of zeros: cheap to make, slow enough to import that the kill lands mid-layer.
  const zeros = buildTar([
    { entry: { path: "usr", kind: "dir" } },
    { entry: { path: "usr/zero", kind: "file" }, data: new Uint8Array(192 << 20) },
  ]);
  await writeOciLayout(`${dir.path}/layout`, { layers: [{ tar: zeros, compression: "gzip" }], tag: "v1" });
  const repoPath = `${dir.path}/repo`;
  newRepo(repoPath).close();
  const child = spawnBootcfs(
    ["--repo", repoPath, "--progress", "json", "oci", "pull", `oci:${dir.path}/layout:v1`, "--name", "app"],
    { stdout: "null" },
  );
  // Killed as soon as the layer task has started: mid-layer, before any tag could exist.
  let seen = "";
  for await (const c of child.stderr) {
    seen += new TextDecoder().decode(c);
    if (seen.includes("layer ")) break;
  }
  child.kill("SIGKILL");
  const status = await child.status;
  assert.equal(status.success, false, "the pull was killed before it finished");
  const list = await bootcfs(["--repo", repoPath, "oci", "images", "--json"]);
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(JSON.parse(list.stdout), []);
  const again = await bootcfs([
    "--repo",
    repoPath,
    "oci",
    "pull",
    `oci:${dir.path}/layout:v1`,
    "--name",
    "app",
    "--json",
  ]);
  assert.equal(again.code, 0, again.stderr);
  const fsck = await bootcfs(["--repo", repoPath, "repo", "fsck", "--json"]);
  assert.equal(
    JSON.parse(fsck.stdout).problems.filter((p: { path: string }) => !p.path.includes(".tmp-object-")).length,
    0,
    fsck.stdout,
  );
});

Deno.test("pull: a V0 repository records its image under composefs.image.v1 (upstream fails the lookup); V1+V2 get both", async () => {
  await using dir = await scratchDir();
  await writeLayered(`${dir.path}/layout`);
  const v0 = newRepo(`${dir.path}/v0`, "sha512", { default: 0, extra: [] });
  const both = newRepo(`${dir.path}/both`, "sha512", { default: 1, extra: [2] });
  try {
    const r0 = await pull(v0, `oci:${dir.path}/layout:v1`, { tag: "a" });
    const img0 = OciImage.openTag(v0, "a");
    assert.equal(img0.imageRef(0), r0.imageId);
    assert.equal(img0.images.v1, r0.imageId);
    assert.equal(img0.images.v2, undefined);
    const r12 = await pull(both, `oci:${dir.path}/layout:v1`, { tag: "a" });
    const img12 = OciImage.openTag(both, "a");
    assert.equal(img12.imageRef(1), r12.imageId);
    assert.ok(img12.imageRef(2));
    assert.notEqual(img12.imageRef(2), r12.imageId);
    assert.notEqual(r0.imageId, r12.imageId, "V0 and V1 images of this tree differ");
  } finally {
    v0.close();
    both.close();
  }
});

Deno.test("gc: a tagged image loses nothing (config and manifest are written once, not rewritten); after untag everything goes", async () => {
  await using dir = await scratchDir();
  await writeLayered(`${dir.path}/layout`);
  const repo = newRepo(`${dir.path}/repo`);
  try {
    const r = await pull(repo, `oci:${dir.path}/layout:v1`, { tag: "app" });
    const first = await gc(repo, { imageObjects: erofsImageObjects });
    // Upstream leaves 2 garbage objects per pull here (the pre-rewrite config and manifest).
    assert.equal(first.objectsRemoved, 0);
    const img = OciImage.openTag(repo, "app");
    assert.equal(img.imageRef(1), r.imageId);
    assert.ok(repo.hasObject(r.imageId!));
    for (const [, v] of img.layerRefs) assert.ok(repo.hasObject(v));
    untagImage(repo, "app");
    const second = await gc(repo, { imageObjects: erofsImageObjects });
    assert.ok(second.objectsRemoved > 0);
    assert.equal(objectNames(repo.path).length, 0);
    assert.deepEqual([...Deno.readDirSync(`${repo.path}/images`)].filter((e) => e.name !== "refs"), []);
    assert.deepEqual([...Deno.readDirSync(`${repo.path}/streams`)].filter((e) => e.name !== "refs"), []);
  } finally {
    repo.close();
  }
});

Deno.test("upgrade: configs without composefs.image refs get their EROFS; a second run is already current", async () => {
  await using dir = await scratchDir();
  await writeLayered(`${dir.path}/layout`);
  await writeOciLayout(`${dir.path}/other`, {
    layers: [{ tar: buildTar([{ entry: { path: "usr", kind: "dir" } }]), compression: "gzip" }],
    tag: "v1",
  });
  const repo = newRepo(`${dir.path}/repo`);
  try {
    const r = await pull(repo, `oci:${dir.path}/layout:v1`, { tag: "old" });
    // Make it "old": the config rewritten without image refs by the store's own writer.
    const img = OciImage.openTag(repo, "old");
    const cv = writeConfigStream(repo, img.configBytes, img.layerRefs);
    writeManifestStream(repo, img.manifestBytes, img.manifestDigest, img.configDigest, cv, img.layerRefs, "old");
    assert.equal(OciImage.openTag(repo, "old").imageRef(1), undefined);
    tagImage(repo, img.manifestDigest, "old-alias");

    const up = await upgradeRepo(repo);
    assert.deepEqual([up.upgraded, up.alreadyCurrent, up.skippedNonContainer], [1, 1, 0]);
    assert.equal(OciImage.openTag(repo, "old").imageRef(1), r.imageId, "same image as the original pull");
    // Rewrites keep config diff_id order (upstream: hash-map order), so the bytes and verities
    // come out exactly as the original pull wrote them.
    assert.equal(OciImage.openTag(repo, "old").manifestVerity, r.manifestVerity);
    assert.equal(OciImage.openTag(repo, "old").configVerity, r.configVerity);
    assert.equal(OciImage.openTag(repo, "old-alias").imageRef(1), r.imageId, "tags follow the manifest link");
    const again = await upgradeRepo(repo);
    assert.deepEqual([again.upgraded, again.alreadyCurrent], [0, 2]);

    // Every pull runs the upgrade first.
    const cv2 = writeConfigStream(repo, img.configBytes, img.layerRefs);
    writeManifestStream(repo, img.manifestBytes, img.manifestDigest, img.configDigest, cv2, img.layerRefs, "old");
    const p = await pull(repo, `oci:${dir.path}/other:v1`, { tag: "other" });
    assert.equal(p.upgrade.upgraded, 1);
    assert.deepEqual(p.upgrade.upgradedTags, ["old"]);
    assert.equal(OciImage.openTag(repo, "old").imageRef(1), r.imageId);
    const gcr = await gc(repo, { imageObjects: erofsImageObjects });
    assert.ok(gcr.objectsRemoved >= 2);
    assert.equal(OciImage.openTag(repo, "old").imageRef(1), r.imageId);
  } finally {
    repo.close();
  }
});

Deno.test("cli: oci pull/images/inspect/tag/untag/compute-id with --json, checked with jq", async () => {
  await using dir = await scratchDir();
  const img = await writeLayered(`${dir.path}/layout`);
  const repoPath = `${dir.path}/repo`;
  const g = ["--repo", repoPath];
  assert.equal((await bootcfs([...g, "--insecure", "repo", "init"])).code, 0);
  const p = await bootcfs([...g, "oci", "pull", `oci:${dir.path}/layout:v1`, "--name", "localhost/app:1", "--json"]);
  assert.equal(p.code, 0, p.stderr);
  const pulled = JSON.parse(p.stdout);
  assert.equal(pulled.manifestDigest, img.manifest.digest);

  const images = await bootcfs([...g, "oci", "images", "--json"]);
  const jq = async (filter: string, json: string) => {
    const c = new Deno.Command("jq", { args: ["-r", filter], stdin: "piped", stdout: "piped" }).spawn();
    const w = c.stdin.getWriter();
    await w.write(te.encode(json));
    await w.close();
    return new TextDecoder().decode((await c.output()).stdout).trim();
  };
  assert.equal(await jq(".[0].name", images.stdout), "localhost/app:1");
  assert.equal(await jq(".[0].imageId", images.stdout), pulled.imageId);

  const cfg = await bootcfs([...g, "oci", "inspect", "localhost/app:1", "--config"]);
  assert.equal(sha256(te.encode(cfg.stdout)), img.config.digest, "--config prints the exact bytes");
  const ins = await bootcfs([...g, "oci", "inspect", `@${img.manifest.digest}`]);
  assert.equal(await jq(".composefs_erofs", ins.stdout), pulled.imageId);
  assert.equal(await jq(".config.rootfs.diff_ids | length", ins.stdout), "3");

  assert.equal((await bootcfs([...g, "oci", "tag", img.manifest.digest, "second"])).code, 0);
  assert.equal((await bootcfs([...g, "oci", "untag", "localhost/app:1"])).code, 0);
  const after = await bootcfs([...g, "oci", "images", "--json"]);
  assert.equal(await jq('[.[].name] | join(",")', after.stdout), "second");
  const bad = await bootcfs([...g, "oci", "untag", "nope"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /no image tagged "nope"/);

  const cid = await bootcfs([...g, "oci", "compute-id", `oci:${dir.path}/layout:v1`]);
  assert.equal(cid.code, 0, cid.stderr);
  assert.equal(cid.stdout.trim(), pulled.imageId);
  assert.equal(listTagsCount(repoPath), 1, "compute-id kept nothing in the repository");
});

function listTagsCount(repoPath: string): number {
  return [...Deno.readDirSync(`${repoPath}/streams/refs/oci`)].length;
}

Deno.test("cli: oci mount NAME mounts the image; files read back", async () => {
  requireRoot();
  await using dir = await scratchDir();
  await writeLayered(`${dir.path}/layout`);
  const repoPath = `${dir.path}/repo`;
  newRepo(repoPath).close();
  const g = ["--repo", repoPath, "--insecure"];
  assert.equal(
    (await bootcfs([...g, "oci", "pull", `oci:${dir.path}/layout:v1`, "--name", "localhost/app:1"])).code,
    0,
  );
  await Deno.mkdir(`${dir.path}/mnt`);
  const m = await bootcfs([...g, "oci", "mount", "localhost/app:1", `${dir.path}/mnt`]);
  assert.equal(m.code, 0, m.stderr);
  try {
    assert.deepEqual(await Deno.readFile(`${dir.path}/mnt/usr/lib/big`), gen(1 << 20, "big"));
    assert.deepEqual(await Deno.readFile(`${dir.path}/mnt/usr/share/doc/c`), gen(300, "c"));
    await assert.rejects(() => Deno.stat(`${dir.path}/mnt/etc/hosts`), Deno.errors.NotFound);
    assert.deepEqual([...Deno.readDirSync(`${dir.path}/mnt/usr/share/doc`)].map((e) => e.name), ["c"]);
    assert.equal(Deno.statSync(`${dir.path}/mnt/usr/bin/tool2`).ino, Deno.statSync(`${dir.path}/mnt/usr/bin/tool`).ino);
  } finally {
    await run("umount", [`${dir.path}/mnt`]);
  }
  // Plain `bootcfs mount NAME` resolves repository names too.
  const m2 = await bootcfs([...g, "mount", "app-by-digest-missing", `${dir.path}/mnt`]);
  assert.notEqual(m2.code, 0);
  assert.match(m2.stderr, /no image tagged/);
});

Deno.test("cli: oci pull docker:// with --tls-verify=false and --authfile gives the layout's image id", async () => {
  await using dir = await scratchDir();
  const img = await writeLayered(`${dir.path}/layout`);
  await using reg = fakeRegistry({ auth: { scheme: "bearer", username: "u", password: "p" } });
  for (const b of [img.config, ...img.layers]) reg.addBlob("rig/app", b.bytes);
  reg.addManifest("rig/app", img.manifest.mediaType, JSON.parse(new TextDecoder().decode(img.manifest.bytes)), ["1"]);
  await Deno.writeTextFile(
    `${dir.path}/auth.json`,
    JSON.stringify({ auths: { [reg.host]: { auth: btoa("u:p") } } }),
  );
  const repoPath = `${dir.path}/repo`;
  newRepo(repoPath).close();
  const g = ["--repo", repoPath];
  const p = await bootcfs([
    ...g,
    "oci",
    "pull",
    `docker://${reg.host}/rig/app:1`,
    "--tls-verify=false",
    "--authfile",
    `${dir.path}/auth.json`,
    "--json",
  ]);
  assert.equal(p.code, 0, p.stderr);
  const r = JSON.parse(p.stdout);
  assert.equal(r.manifestDigest, img.manifest.digest);
  assert.equal(r.tag, `docker://${reg.host}/rig/app:1`, "the default tag is the source, as cfsctl");
  assert.ok(Deno.lstatSync(`${repoPath}/streams/refs/oci/docker:%2F%2F${reg.host}%2Frig%2Fapp:1`).isSymlink);
  const local = await bootcfs([...g, "oci", "compute-id", `oci:${dir.path}/layout:v1`]);
  assert.equal(local.stdout.trim(), r.imageId);
  // Without credentials the registry refuses, and nothing is tagged.
  const denied = await bootcfs([
    ...g,
    "oci",
    "pull",
    `docker://${reg.host}/rig/app:1`,
    "--tls-verify=false",
    "--authfile",
    "/dev/null",
    "--name",
    "x",
  ]);
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /^error: pulling docker:/m);
  const tags = [...Deno.readDirSync(`${repoPath}/streams/refs/oci`)].map((e) => e.name);
  assert.deepEqual(tags, [`docker:%2F%2F${reg.host}%2Frig%2Fapp:1`]);
});
