/**
 * createFilesystem / commitImages (oci-and-boot.md §4.4, §6.1–6.4) against podman 4.3: multi-layer
 * images (hand-made tars with whiteouts, opaque directories, hardlinks across layers, directory
 * metadata overridden later; and a podman build with RUN steps) are imported into a repository,
 * merged, and compared with what podman itself unpacks (`podman image mount`, walked by GNU
 * find/stat/getfattr). The committed V1 image must pass fsck.erofs, mount, and read back the same.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { errorChain } from "../../lib/error/mod.ts";
import { mountComposefs, unmountComposefs } from "../../lib/mount/mod.ts";
import { commitImages, createFilesystem } from "../../lib/oci/mod.ts";
import { contentType } from "../../lib/splitstream/mod.ts";
import { Repository } from "../../lib/repository/mod.ts";
import { buildTar, encodeHeader, type TarBuildItem, type TarWriteEntry } from "../../lib/tar/mod.ts";
import type { ErofsFormats } from "../../lib/repository/mod.ts";
import { requireRoot, run, scratchDir } from "../helpers/fs.ts";
import { writeCustomArchive } from "../helpers/cstor.ts";
import {
  dirListing,
  importLayer,
  importOciLayout,
  importOciLayoutWithEntryLogs,
  importWithEntryLogs,
  treeListing,
} from "../helpers/layers.ts";
import type { EntryLog } from "../../lib/tree/mod.ts";
import type { ObjectId } from "../../lib/repository/mod.ts";
import { gen, podmanStorage, writeOciLayout } from "../helpers/oci.ts";

const te = new TextEncoder();
const T = 1700000000;
const d = (path: string, extra: Partial<TarWriteEntry> = {}): TarBuildItem => ({
  entry: { path, kind: "dir", mtime: T, ...extra },
});
const f = (path: string, data: Uint8Array | string, extra: Partial<TarWriteEntry> = {}): TarBuildItem => ({
  entry: { path, kind: "file", mtime: T, ...extra },
  data: typeof data === "string" ? te.encode(data) : data,
});
const h = (path: string, target: string): TarBuildItem => ({
  entry: { path, kind: "hardlink", linkTarget: target, mtime: T },
});

/** The transform's xattr allowlist (default mode). */
const ALLOWLIST = (name: string) => name === "security.capability";

/** Hand-made layers: every merge rule of §6.2 that podman agrees on. */
function handMadeLayers(): Uint8Array[] {
  const cap = new Uint8Array([1, 0, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  return [
    buildTar([
      d("usr", { mtime: T + 5 }),
      d("usr/bin"),
      f("usr/bin/tool", gen(1000, "tool"), { mode: 0o755, xattrs: { "security.capability": cap, "user.note": "x" } }),
      d("usr/lib"),
      f("usr/lib/small", "small\n"),
      f("usr/lib/exact64", gen(64, "e64")),
      f("usr/lib/s65", gen(65, "s65")),
      f("usr/lib/frac", "f", { mtime: `${T}.123456789` }),
      d("etc"),
      f("etc/passwd", "root:x:0:0::/:/bin/sh\n"),
      { entry: { path: "etc/sym", kind: "symlink", linkTarget: "../usr/lib/small", mtime: T } },
      d("data", { uid: 1, gid: 2 }),
      f("data/keep", gen(200, "keep"), { mode: 0o640, uid: 7, gid: 8 }),
      f("data/gone", "bye\n"),
      d("data/sub"),
      f("data/sub/deep", "deep\n"),
      d("data/opq"),
      f("data/opq/old", gen(300, "old")),
      d("data/opq/olddir"),
      f("data/opq/olddir/x", "x"),
      d("data/q"),
      f("data/q/lower", "lower\n"),
      { entry: { path: "data/fifo", kind: "fifo", mtime: T } },
      { entry: { path: "data/null", kind: "char", devMajor: 1, devMinor: 3, mtime: T } },
    ]),
    buildTar([
      // Parents of changed entries are listed again, as real layer tools do: podman would
      // otherwise give them the time of unpacking.
      d("data", { mode: 0o700, uid: 3, gid: 4, mtime: T + 100 }),
      f("data/.wh.gone", ""),
      h("data/link-to-s65", "usr/lib/s65"),
      d("data/opq", { mtime: T + 200 }),
      f("data/opq/.wh..wh..opq", ""),
      f("data/opq/new", gen(5000, "new")),
      d("usr", { mtime: T + 5 }),
      d("usr/lib"),
      f("usr/lib/small", "replaced\n"),
    ]),
    buildTar([
      d("data", { mode: 0o750, uid: 3, gid: 4, mtime: T + 300 }),
      f("data/sub", "now a file\n"),
      d("etc"),
      d("etc/passwd", { mode: 0o711 }),
      f("data/h1", gen(100, "h1")),
      h("data/h2", "data/h1"),
      d("data/q", { mtime: T + 400 }),
      f("data/q/+early", "early\n"),
      f("data/q/.wh..wh..opq", ""),
      f("data/q/late", "late\n"),
    ]),
  ];
}

function initRepo(path: string, formats: ErofsFormats = { default: 1, extra: [2] }): Repository {
  return Repository.init(path, { alg: "sha512", formats, insecure: true }).repo;
}

/** podman's listing with the OCI transform's effect on `/run` applied (emptied, so nlink 2; `/usr`'s mtime). */
function transformRun(lines: string[]): string[] {
  const usrMtime = lines.find((l) => l.startsWith("/usr d "))?.split(" ")[6] ?? "0.000000000";
  return lines.filter((l) => !l.startsWith("/run/")).map((l) => {
    if (!l.startsWith("/run d ")) return l;
    const p = l.split(" ");
    p[6] = usrMtime;
    p[7] = "2";
    return p.join(" ");
  });
}

const withoutRoot = (lines: string[]) => lines.filter((l) => !l.startsWith("/ "));

/** Pulls `ref` into podman's storage, mounts it, and lists it (the root excluded, /run transformed). */
async function podmanListing(pm: Awaited<ReturnType<typeof podmanStorage>>, ref: string): Promise<string[]> {
  const mnt = (await pm.podman(["image", "mount", ref])).trim();
  try {
    return withoutRoot(transformRun(await dirListing(mnt, ALLOWLIST)));
  } finally {
    await pm.podman(["image", "unmount", ref]);
  }
}

/** Checks every committed image with fsck.erofs, mounts the `version` one and lists it. */
async function mountedListing(
  repo: Repository,
  ids: Map<number, string>,
  mnt: string,
  version = 1,
): Promise<string[]> {
  for (const id of ids.values()) await run("fsck.erofs", [`${repo.path}/images/${id}`]);
  await Deno.mkdir(mnt, { recursive: true });
  const image = `${repo.path}/images/${ids.get(version)}`;
  mountComposefs(mnt, { image, objectDirs: [`${repo.path}/objects`], insecure: true });
  try {
    return await dirListing(mnt, ALLOWLIST);
  } finally {
    unmountComposefs(mnt);
  }
}

/**
 * The tree a pull builds from the entry logs of its own layer imports (no splitstream read back),
 * in a fresh repository `path`; it must list exactly like the tree merged from the splitstreams.
 */
async function treeFromEntryLogs(
  path: string,
  imported: (repo: Repository) => Promise<{ verities: ObjectId[]; logs: EntryLog[] }>,
): Promise<string[]> {
  const repo = initRepo(path, { default: 1, extra: [] });
  try {
    const { verities, logs } = await imported(repo);
    assert.equal(logs.length, verities.length);
    return treeListing(await createFilesystem(repo, verities, { entryLogs: logs }), repo);
  } finally {
    repo.close();
  }
}

/** A listing with nanoseconds dropped (V2 images do not store them). */
const wholeSeconds = (lines: string[]) => lines.map((l) => l.replace(/ (-?\d+)\.\d{9} /, " $1.000000000 "));

Deno.test("oci filesystem: hand-made layers merge like podman unpacks them; V1 mounts and reads back the same", async () => {
  requireRoot();
  await using dir = await scratchDir();
  const layers = handMadeLayers();
  await writeOciLayout(`${dir.path}/layout`, { layers: layers.map((tar) => ({ tar, compression: "gzip" })), tag: "t" });
  await using pm = await podmanStorage();
  const imageId = (await pm.podman(["pull", "-q", `oci:${dir.path}/layout:t`])).trim();
  const expected = await podmanListing(pm, imageId);

  const repo = initRepo(`${dir.path}/repo`);
  try {
    const { verities, diffIds } = await importOciLayout(repo, `${dir.path}/layout`);
    const root = await createFilesystem(repo, verities, { verifyDiffIds: diffIds });
    const tree = treeListing(root, repo);
    // The root takes /usr's metadata (§6.3) and nothing but security.capability survives.
    const usr = tree.find((l) => l.startsWith("/usr d "))!.split(" ");
    assert.deepEqual(tree[0].split(" ").slice(1, 8), ["d", ...usr.slice(2, 7), "5"]);
    assert.ok(
      tree.some((l) =>
        l.startsWith("/usr/bin/tool ") && l.endsWith(" security.capability=0100000220000000000000000000000000000000")
      ),
    );
    assert.deepEqual(withoutRoot(tree), expected);
    const layout = `${dir.path}/layout`;
    assert.deepEqual(
      await treeFromEntryLogs(`${dir.path}/repo-logs`, (r) => importOciLayoutWithEntryLogs(r, layout)),
      tree,
    );
    // The fixture really exercises the rules (podman agreeing on each of them).
    const paths = tree.map((l) => l.split(" ")[0]);
    for (const p of ["/data/q/+early", "/data/q/late", "/data/opq/new", "/data/null"]) assert.ok(paths.includes(p), p);
    for (const p of ["/data/gone", "/data/q/lower", "/data/opq/old", "/data/opq/olddir", "/data/sub/deep"]) {
      assert.ok(!paths.includes(p), p);
    }
    assert.ok(tree.some((l) => l.startsWith("/data/link-to-s65 f 644 0 0 65 ") && l.includes(" 2 /data/link-to-s65 ")));
    assert.ok(tree.some((l) => l.startsWith("/data/h2 f ") && l.includes(" 2 /data/h1 ")));

    const ids = commitImages(repo, root);
    assert.deepEqual([...ids.keys()], [1, 2]);
    assert.deepEqual(await mountedListing(repo, ids, `${dir.path}/mnt`), tree);
    assert.deepEqual(await mountedListing(repo, ids, `${dir.path}/mnt`, 2), wholeSeconds(tree));

    // Deterministic: a fresh repository and a second run give the same image ids.
    const again = initRepo(`${dir.path}/repo2`);
    try {
      const r2 = await importOciLayout(again, `${dir.path}/layout`);
      assert.deepEqual(commitImages(again, await createFilesystem(again, r2.verities)), ids);
    } finally {
      again.close();
    }
  } finally {
    repo.close();
  }
});

Deno.test("oci filesystem: a podman build with RUN steps (hardlinks, whiteouts, opaque dir, fifo) matches podman", async () => {
  requireRoot();
  await using dir = await scratchDir();
  await using pm = await podmanStorage();
  const busybox = await Deno.readFile("/bin/busybox");
  const run1 =
    "ln /data/big /data/big-link && cp /data/big /data/hl1 && ln /data/hl1 /data/hl2 && ln -s ../usr/share/f65 /data/sym && mkfifo /data/fifo && " +
    "chmod 4750 /data/x && chown 12:34 /data/x/y";
  const run2 = "rm /data/to-delete && rm -rf /data/opq && mkdir /data/opq && echo new > /data/opq/z && chmod 700 /data";
  await pm.buildScratch(
    "localhost/fs/built:1",
    {
      "usr/bin/busybox": busybox,
      "usr/share/f65": gen(65, "f65"),
      "data/big": gen(100_000, "big"),
      "data/x/y": "y\n",
      "data/to-delete": "bye\n",
      "data/opq/old": gen(70, "old"),
      "run/cache/junk": "junk\n",
    },
    [
      "COPY --chmod=755 rootfs/usr/bin/busybox /usr/bin/busybox",
      `RUN ["/usr/bin/busybox","sh","-c","${run1}"]`,
      `RUN ["/usr/bin/busybox","sh","-c","${run2}"]`,
    ],
    ["--isolation=chroot", "--network=host"],
  );
  const expected = await podmanListing(pm, "localhost/fs/built:1");
  await pm.podman(["save", "--format", "oci-dir", "-o", `${dir.path}/layout`, "localhost/fs/built:1"]);

  const repo = initRepo(`${dir.path}/repo`, { default: 1, extra: [] });
  try {
    const { verities, diffIds } = await importOciLayout(repo, `${dir.path}/layout`);
    assert.equal(verities.length, 4);
    const root = await createFilesystem(repo, verities, { verifyDiffIds: diffIds });
    const tree = treeListing(root, repo);
    assert.deepEqual(withoutRoot(tree), expected);
    const layout = `${dir.path}/layout`;
    assert.deepEqual(
      await treeFromEntryLogs(`${dir.path}/repo-logs`, (r) => importOciLayoutWithEntryLogs(r, layout)),
      tree,
    );
    assert.ok(tree.includes("/run d 755 0 0 0 1700000000.000000000 2 - - "), "run is emptied");
    assert.ok(tree.some((l) => l.startsWith("/data/hl2 f ") && l.includes(" 2 /data/hl1 ")), "hardlink kept");
    assert.ok(!tree.some((l) => l.startsWith("/data/to-delete ") || l.startsWith("/data/opq/old ")), "whiteouts");
    const ids = commitImages(repo, root);
    assert.deepEqual([...ids.keys()], [1]);
    assert.deepEqual(await mountedListing(repo, ids, `${dir.path}/mnt`), tree);
  } finally {
    repo.close();
  }
});

Deno.test("oci filesystem: tricky tars (long, PAX, GNU and unicode names, global header, record padding) match podman", async () => {
  requireRoot();
  await using dir = await scratchDir();
  await using pm = await podmanStorage();
  const layers = await writeCustomArchive(`${dir.path}/custom.tar`, "localhost/fs/custom:1");
  await pm.podman(["load", "-q", "-i", `${dir.path}/custom.tar`]);
  const expected = await podmanListing(pm, "localhost/fs/custom:1");

  const repo = initRepo(`${dir.path}/repo`, { default: 1, extra: [] });
  try {
    const imported: { verity: ObjectId; diffId: string }[] = [];
    for (const tar of layers) imported.push(await importLayer(repo, once(tar)));
    const root = await createFilesystem(repo, imported.map((l) => l.verity), {
      verifyDiffIds: imported.map((l) => l.diffId),
    });
    const tree = treeListing(root, repo);
    assert.deepEqual(withoutRoot(tree), expected);
    const logged = (r: Repository) =>
      importWithEntryLogs(r, layers.map((tar, i) => ({ tar: once(tar), diffId: imported[i].diffId })));
    assert.deepEqual(await treeFromEntryLogs(`${dir.path}/repo-logs`, logged), tree);
    assert.ok(tree.some((l) => l.startsWith(`/data/extra/${"g".repeat(110)} f `)), "GNU long name");
    assert.ok(tree.some((l) => l.startsWith("/data/hardlink-to-s65 f 644 0 0 65 ")), "link keeps the old inode");
    assert.deepEqual(await mountedListing(repo, commitImages(repo, root), `${dir.path}/mnt`), tree);
  } finally {
    repo.close();
  }
});

Deno.test("oci filesystem: an image without /usr gets the scratch root (0555 root:root, mtime 0)", async () => {
  await using dir = await scratchDir();
  const repo = initRepo(`${dir.path}/repo`, { default: 1, extra: [] });
  try {
    const { verity } = await importLayer(repo, once(buildTar([d("./", { mode: 0o700, uid: 9 }), f("hello", "hi\n")])));
    const root = await createFilesystem(repo, [verity]);
    assert.equal(treeListing(root, repo)[0], "/ d 555 0 0 0 0.000000000 2 - - ");
  } finally {
    repo.close();
  }
});

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

Deno.test("oci filesystem: diff_id verification reassembles the tar (trailing bytes included)", async () => {
  await using dir = await scratchDir();
  const repo = initRepo(`${dir.path}/repo`, { default: 1, extra: [] });
  try {
    const tar = buildTar([d("usr"), f("usr/big", gen(10_000, "b")), f("usr/small", "s")], {
      trailing: new Uint8Array(1024).fill(7),
    });
    const { verity, diffId } = await importLayer(repo, once(tar));
    await createFilesystem(repo, [verity], { verifyDiffIds: [diffId] });
    const wrong = `sha256:${"0".repeat(64)}`;
    await assert.rejects(createFilesystem(repo, [verity], { verifyDiffIds: [wrong] }), /incorrect checksum/);
    await assert.rejects(createFilesystem(repo, [verity], { verifyDiffIds: [] }), /0 diff_ids given for 1 layers/);
  } finally {
    repo.close();
  }
});

/** Rejects with an error whose whole context chain matches `re`. */
function rejectsChain(p: Promise<unknown>, re: RegExp): Promise<void> {
  return assert.rejects(p, (e) => {
    assert.match(errorChain(e), re);
    return true;
  });
}

Deno.test("oci filesystem: malformed layer splitstreams are refused", async () => {
  await using dir = await scratchDir();
  const repo = initRepo(`${dir.path}/repo`, { default: 1, extra: [] });
  const layer = (build: (w: ReturnType<Repository["createStreamWriter"]>) => void) => {
    const w = repo.createStreamWriter(contentType("ocilayer"));
    build(w);
    return repo.ensureObject(w.finish()).id;
  };
  const header = (path: string, size: number) => encodeHeader({ path, kind: "file", size });
  try {
    const small = layer((w) => {
      w.writeInline(header("a", 10));
      repo.writeExternal(w, gen(10, "a"));
      w.writeInline(new Uint8Array(502 + 1024));
    });
    await rejectsChain(
      createFilesystem(repo, [small]),
      /small file "a" \(10 bytes\) is incorrectly stored as an object/,
    );
    const big = layer((w) => w.writeInline(buildTar([f("b", gen(100, "b"))])));
    await rejectsChain(createFilesystem(repo, [big]), /large file "b" \(100 bytes\) is incorrectly stored inline/);
    const extHeader = layer((w) => {
      repo.writeExternal(w, header("c", 0));
      w.writeInline(new Uint8Array(1024));
    });
    await rejectsChain(createFilesystem(repo, [extHeader]), /stored external where tar headers or inline data belong/);
    const missingParent = layer((w) => w.writeInline(buildTar([f("no/such", "x")])));
    await rejectsChain(
      createFilesystem(repo, [missingParent]),
      /layer 1 \([0-9a-f]+\): "\/no\/such": parent directory "\/no" does not exist/,
    );
    const config = repo.createStreamWriter(contentType("ociconfg"));
    await rejectsChain(createFilesystem(repo, [repo.ensureObject(config.finish()).id]), /is not a tar layer/);
  } finally {
    repo.close();
  }
});

Deno.test("oci filesystem: a hardlinked whiteout device is refused before any image is written", async () => {
  await using dir = await scratchDir();
  const repo = initRepo(`${dir.path}/repo`, { default: 2, extra: [1] });
  try {
    const tar = buildTar([
      d("usr"),
      { entry: { path: "usr/w", kind: "char", devMajor: 0, devMinor: 0 } },
      h("usr/w2", "usr/w"),
    ]);
    const { verity } = await importLayer(repo, once(tar));
    const root = await createFilesystem(repo, [verity]);
    assert.throws(() => commitImages(repo, root), /whiteout .* cannot be hardlinked/);
    const images = `${repo.path}/images`;
    assert.deepEqual(existsSync(images) ? [...Deno.readDirSync(images)] : [], []);
  } finally {
    repo.close();
  }
});
