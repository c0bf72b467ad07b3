/**
 * Native containers-storage reading against real podman 4.3 overlay stores (oci-and-boot.md §10,
 * test-rig.md §7): layers rebuilt from tar-split equal the loaded tars, `podman save`'s layer
 * tars and their diff_ids; zero-copy import reflinks on xfs, hardlinks on ext4, and copies (or,
 * with zero-copy, refuses) across filesystems, always giving the same layer splitstream as
 * splitting the rebuilt tar.
 */
import assert from "node:assert/strict";
import { collect } from "../../lib/bytes/mod.ts";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import {
  addStats,
  ContainersStorage,
  ContainersStorageSource,
  emptyStats,
  type ImportStats,
  importStorageImage,
  importStorageLayer,
} from "../../lib/cstor/mod.ts";
import { decompressLayer, loadImage } from "../../lib/oci/mod.ts";
import { Repository } from "../../lib/repository/mod.ts";
import { readTar } from "../../lib/tar/mod.ts";
import {
  buildLayeredImage,
  customLayers,
  type OverlayStore,
  overlayStore,
  referenceSplit,
  sha256,
  writeCustomArchive,
} from "../helpers/cstor.ts";
import { createLoopFs, requireRoot, run, scratchDir } from "../helpers/fs.ts";
import { VECTORS } from "../helpers/paths.ts";

const CUSTOM = "localhost/cstor/custom:1";
const BUILT = "localhost/cstor/built:1";
const TOP_DIFF_ID = "sha256:c877690a1f5bbc7924681e6d21fc398928f1d0d26ce88cadbfcd752142204bcb";

function initRepo(path: string): Repository {
  return Repository.init(path, { alg: "sha256", formats: { default: 1, extra: [] }, insecure: true }).repo;
}

// The custom image's regular files over 64 bytes: 12 in the first layer (s65…s200000, the long
// names, unicode, xattr, frac-mtime, opq/old), 2 in the second (opq/new, the new s65), 1 in the
// third (the GNU long name).
const CUSTOM_LARGE_FILES = 15;

/** Distinct contents of regular files over 64 bytes in `tars` (what becomes external objects). */

async function largeFiles(tars: Uint8Array[]): Promise<{ count: number; bytes: number }> {
  const seen = new Set<string>();
  let bytes = 0;
  for (const t of tars) {
    for await (const ev of readTar(ReadableStream.from([t]))) {
      if (ev.type !== "entry" || ev.kind !== "file" || ev.size <= 64) continue;
      const d = sha256(await ev.bytes());
      if (!seen.has(d)) bytes += ev.size;
      seen.add(d);
    }
  }
  assert.equal(seen.size, CUSTOM_LARGE_FILES);
  return { count: seen.size, bytes };
}

async function loadCustom(store: OverlayStore, dir: string): Promise<Uint8Array[]> {
  const layers = await writeCustomArchive(`${dir}/custom.tar`, CUSTOM);
  await store.podman("load", "-q", "-i", `${dir}/custom.tar`);
  return layers;
}

/** Imports every layer of `name` and checks each layer splitstream against the reference split of the rebuilt tar. */
async function importAndCompare(
  repo: Repository,
  refRepo: Repository,
  root: string,
  name: string,
  zeroCopy: boolean,
): Promise<ImportStats> {
  const src = await ContainersStorageSource.open(`containers-storage:[${root}]${name}`);
  const total = emptyStats();
  using _ = await src.store.lock();
  for (const l of src.layers) {
    const r = await importStorageLayer(repo, src.store, l.layer, { zeroCopy });
    assert.equal(r.alreadyPresent, false);
    addStats(total, r.stats);
    const reference = await referenceSplit(refRepo, src.layerStream(l));
    assert.deepEqual(repo.readObject(r.id), reference, `layer ${l.diffId}: splitstream differs from the reference`);
    assert.equal(repo.hasStream(`oci-layer-${l.diffId}`), r.id);
    // The stored stream reassembles to the diff_id.
    const h = createHash("sha256");
    await repo.catStream(`oci-layer-${l.diffId}`, new WritableStream({ write: (c) => void h.update(c) }).getWriter());
    assert.equal(`sha256:${h.digest("hex")}`, l.diffId);
    // A second import finds the stream and reads nothing.
    const again = await importStorageLayer(repo, src.store, l.layer, { zeroCopy });
    assert.equal(again.alreadyPresent, true);
    assert.equal(again.id, r.id);
    assert.equal(again.stats.layersAlreadyPresent, 1);
  }
  assert.equal(total.layers, src.layers.length);
  return total;
}

Deno.test("cstor: rebuilt layers equal the loaded tars, podman save's layers and their diff_ids", async () => {
  requireRoot();
  await using dir = await scratchDir("bootcfs-cstor-");
  await using store = await overlayStore(dir.path);
  const custom = await loadCustom(store, dir.path);
  await Deno.mkdir(`${dir.path}/ctx`);
  await buildLayeredImage(store, `${dir.path}/ctx`, BUILT);

  for (const name of [CUSTOM, BUILT]) {
    const src = await ContainersStorageSource.open(`containers-storage:[${store.root}]${name}`);
    const id = (await store.podman("image", "inspect", "--format", "{{.Id}}", name)).trim();
    assert.equal(src.image.id, id);
    assert.equal(src.configDigest, `sha256:${id}`);
    const diffIds = JSON.parse(await store.podman("image", "inspect", "--format", "{{json .RootFS.Layers}}", name));
    assert.deepEqual(src.layers.map((l) => l.diffId), diffIds);

    // podman save (docker-archive) writes each layer uncompressed; GNU tar unpacks the archive.
    const saved = `${dir.path}/save-${src.image.id}`;
    await Deno.mkdir(saved);
    await store.podman("save", "-q", "--format", "docker-archive", "-o", `${saved}.tar`, name);
    await run("tar", ["-xf", `${saved}.tar`, "-C", saved]);
    const savedLayers: string[] = JSON.parse(await Deno.readTextFile(`${saved}/manifest.json`))[0].Layers;
    assert.equal(savedLayers.length, src.layers.length);

    for (const [i, l] of src.layers.entries()) {
      const rebuilt = await collect(src.layerStream(l));
      assert.equal(sha256(rebuilt), l.diffId);
      assert.equal(rebuilt.length, l.size);
      assert.deepEqual(rebuilt, await Deno.readFile(`${saved}/${savedLayers[i]}`), `layer ${i} vs podman save`);
      if (name === CUSTOM) assert.deepEqual(rebuilt, custom[i], `layer ${i} vs the loaded tar`);
      // The per-entry view: one item per tar entry (GNU tar lists them), content inside layer dirs.
      const listed = (await run("tar", ["-tf", `${saved}/${savedLayers[i]}`])).split("\n").filter((x) => x);
      using _ = await src.store.lock();
      let entries = 0;
      for await (const it of src.store.layerItems(l.layer.id)) {
        if (it.type !== "entry" || it.typeflag === "g") continue; // GNU tar does not list global headers
        entries++;
        if (it.content) {
          assert.ok(it.content.path.startsWith(`${store.root}/overlay/${it.content.layerId}/diff/`));
          assert.equal((await Deno.lstat(it.content.path)).size, it.size);
        }
      }
      assert.equal(entries, listed.length, `layer ${i}: entries`);
    }

    // lib/oci reads the source like any other: manifest, verified config, layers by descriptor.
    const img = await loadImage(src);
    assert.equal(img.manifest.digest, sha256(await Deno.readFile(`${store.root}/overlay-images/${id}/manifest`)));
    for (const [i, l] of img.layers.entries()) {
      const tar = await collect(decompressLayer(await src.getBlob(l.descriptor), l.descriptor.mediaType));
      assert.equal(sha256(tar), src.layers[i].diffId);
    }
    await assert.rejects(src.getBlob({ digest: `sha256:${"0".repeat(64)}`, size: 1 }), /not part of image/);

    // Lookup by short id and by name suffix.
    const short = (await store.podman("images", "--format", "{{.ID}}", "--filter", `reference=${name}`)).trim();
    const byShort = await ContainersStorageSource.open(`containers-storage:[${store.root}]${short}`);
    assert.equal(byShort.image.id, id);
    const bySuffix = await ContainersStorageSource.open(`containers-storage:[${store.root}]${name.slice(10)}`);
    assert.equal(bySuffix.image.id, id);
  }
  await assert.rejects(
    ContainersStorageSource.open(`containers-storage:[${store.root}]localhost/absent:1`),
    /not found in containers-storage/,
  );
});

Deno.test("cstor: zero-copy import reflinks on xfs and equals splitting the rebuilt tar", async () => {
  requireRoot();
  await using xfs = await createLoopFs("xfs");
  await using dir = await scratchDir("bootcfs-cstor-");
  await using store = await overlayStore(xfs.mountPoint);
  const layers = await loadCustom(store, dir.path);
  const repo = initRepo(`${xfs.mountPoint}/repo`);
  const refRepo = initRepo(`${dir.path}/ref-repo`);
  try {
    const dfBefore = Number((await run("df", ["--output=used", "-B1", xfs.mountPoint])).split("\n")[1]);
    const stats = await importAndCompare(repo, refRepo, store.root, CUSTOM, true);
    const dfAfter = Number((await run("df", ["--output=used", "-B1", xfs.mountPoint])).split("\n")[1]);
    const large = await largeFiles(layers);
    assert.equal(stats.objectsReflinked, large.count);
    assert.equal(stats.bytesReflinked, large.bytes);
    assert.equal(stats.objectsCopied + stats.objectsHardlinked, 0);
    // Reflinked data takes no new space: the repository grew by far less than the content.
    assert.ok(dfAfter - dfBefore < large.bytes, `used ${dfAfter - dfBefore} bytes for ${large.bytes} reflinked`);
    const big = repo.ensureObject(await largeObject(layers));
    assert.equal(big.method, "present");
    assert.match(await run("filefrag", ["-v", repo.objectPath(big.id)]), /shared/);
  } finally {
    repo.close();
    refRepo.close();
  }
});

/** The largest regular file content of the custom layers. */
async function largeObject(tars: Uint8Array[]): Promise<Uint8Array> {
  let best: Uint8Array = new Uint8Array();
  for (const t of tars) {
    for await (const ev of readTar(ReadableStream.from([t]))) {
      if (ev.type === "entry" && ev.kind === "file" && ev.size > best.length) best = await ev.bytes();
    }
  }
  return best;
}

Deno.test("cstor: zero-copy import hardlinks on ext4", async () => {
  requireRoot();
  await using ext4 = await createLoopFs("ext4");
  await using dir = await scratchDir("bootcfs-cstor-");
  await using store = await overlayStore(ext4.mountPoint);
  const layers = await loadCustom(store, dir.path);
  const repo = initRepo(`${ext4.mountPoint}/repo`);
  const refRepo = initRepo(`${dir.path}/ref-repo`);
  try {
    const stats = await importAndCompare(repo, refRepo, store.root, CUSTOM, true);
    const large = await largeFiles(layers);
    assert.equal(stats.objectsHardlinked, large.count);
    assert.equal(stats.bytesHardlinked, large.bytes);
    assert.equal(stats.objectsCopied + stats.objectsReflinked, 0);
    // The object is the layer's file itself.
    const src = await ContainersStorageSource.open(`containers-storage:[${store.root}]${CUSTOM}`);
    // The whole-image import finds every layer already there.
    const again = await importStorageImage(repo, src, { zeroCopy: true });
    assert.equal(again.stats.layersAlreadyPresent, src.layers.length);
    assert.deepEqual(again.layers.map((l) => l.diffId), src.layers.map((l) => l.diffId));
    for (const l of again.layers) assert.equal(repo.hasStream(`oci-layer-${l.diffId}`), l.id);
    using _ = await src.store.lock();
    let checked = 0;
    for await (const it of src.store.layerItems(src.layers[0].layer.id)) {
      if (it.type !== "entry" || !it.content || it.size <= 64) continue;
      const obj = repo.ensureObject(await Deno.readFile(it.content.path));
      const a = Deno.statSync(repo.objectPath(obj.id)), b = Deno.statSync(it.content.path);
      assert.equal(a.ino, b.ino, it.name);
      assert.ok((b.nlink ?? 0) >= 2, it.name);
      checked++;
    }
    assert.ok(checked >= 10);
  } finally {
    repo.close();
    refRepo.close();
  }
});

Deno.test("cstor: across filesystems zero-copy refuses, the default copies", async () => {
  requireRoot();
  await using a = await createLoopFs("ext4");
  await using b = await createLoopFs("ext4");
  await using dir = await scratchDir("bootcfs-cstor-");
  await using store = await overlayStore(a.mountPoint);
  const layers = await loadCustom(store, dir.path);
  const src = await ContainersStorageSource.open(`containers-storage:[${store.root}]${CUSTOM}`);
  const strict = initRepo(`${b.mountPoint}/strict`);
  const repo = initRepo(`${b.mountPoint}/repo`);
  const refRepo = initRepo(`${dir.path}/ref-repo`);
  try {
    {
      using _ = await src.store.lock();
      await assert.rejects(
        importStorageLayer(strict, src.store, src.layers[0].layer, { zeroCopy: true }),
        (e: Error) => /copying is disabled/.test(String(e.cause)) && /importing layer sha256:/.test(e.message),
      );
      assert.equal(strict.hasStream(`oci-layer-${src.layers[0].diffId}`), null);
    }
    const stats = await importAndCompare(repo, refRepo, store.root, CUSTOM, false);
    const large = await largeFiles(layers);
    assert.equal(stats.objectsCopied, large.count);
    assert.equal(stats.bytesCopied, large.bytes);
    assert.equal(stats.objectsReflinked + stats.objectsHardlinked, 0);
  } finally {
    strict.close();
    repo.close();
    refRepo.close();
  }
});

Deno.test("cstor: a vfs store rebuilds the same layers", async () => {
  requireRoot();
  await using dir = await scratchDir("bootcfs-cstor-");
  const runRoot = await Deno.makeTempDir({ prefix: "bcfs-vfs-" });
  try {
    const root = `${dir.path}/vfs`;
    const podman = (...args: string[]) =>
      run("podman", ["--root", root, "--runroot", runRoot, "--storage-driver", "vfs", ...args]);
    const layers = await writeCustomArchive(`${dir.path}/custom.tar`, CUSTOM);
    await podman("load", "-q", "-i", `${dir.path}/custom.tar`);
    const store = await ContainersStorage.open(root);
    assert.equal(store.driver, "vfs");
    const src = await ContainersStorageSource.fromImage(
      store,
      await (async () => {
        using _ = await store.lock();
        return await store.findImage(CUSTOM);
      })(),
    );
    for (const [i, l] of src.layers.entries()) assert.deepEqual(await collect(src.layerStream(l)), layers[i]);
    assert.deepEqual(customLayers().map(sha256), src.layers.map((l) => l.diffId));
  } finally {
    await Deno.remove(runRoot, { recursive: true });
  }
});

Deno.test("cstor: overlay metacopy stubs are read from the lower layer; symlinked paths are refused", async () => {
  requireRoot();
  await using dir = await scratchDir("bootcfs-cstor-");
  const root = `${dir.path}/storage`;
  const vectors = `${VECTORS}/libpod/storage`;
  // The recorded top layer of rig/layered:1 on a made-up lower layer (the recorded base's id).
  const top = "0b7560cdaca26bcfc9e13686d940b18935ac25e9bc01fbc5b6b14bd2b4eb7085";
  const base = "dfc92dde43567fab298d7bc624701209e078796cb691ff72e9f291ce9ba26bbb";
  for (const d of ["overlay-layers", "overlay-images", "overlay/l", `overlay/${top}/diff/data/extra`]) {
    await Deno.mkdir(`${root}/${d}`, { recursive: true });
  }
  await Deno.mkdir(`${root}/overlay/${base}/diff/data/extra`, { recursive: true });
  await Deno.copyFile(`${vectors}/overlay-layers.layers.json`, `${root}/overlay-layers/layers.json`);
  await Deno.writeFile(
    `${root}/overlay-layers/${top}.tar-split.gz`,
    gzipSync(await Deno.readFile(`${vectors}/top-layer.tar-split.ndjson`)),
  );
  await Deno.symlink(`../${base}/diff`, `${root}/overlay/l/BASESHORTID`);
  await Deno.writeTextFile(`${root}/overlay/${top}/lower`, "l/BASESHORTID");
  // A metacopy stub in the top layer (metadata only), the content in the lower one.
  const stub = `${root}/overlay/${top}/diff/data/extra/added.txt`;
  await Deno.writeFile(stub, new Uint8Array());
  await run("setfattr", ["-n", "trusted.overlay.metacopy", "-v", "", stub]);
  await Deno.writeTextFile(`${root}/overlay/${base}/diff/data/extra/added.txt`, "added\n");
  const store = await ContainersStorage.open(root);
  {
    using _ = await store.lock();
    const c = store.resolveContent(top, "data/extra/added.txt");
    assert.equal(c.layerId, base);
    assert.equal(sha256(await collect(store.layerTar(top))), TOP_DIFF_ID);
  }
  // Without the xattr the stub is the (wrong, empty) content.
  await run("setfattr", ["-x", "trusted.overlay.metacopy", stub]);
  {
    using _ = await store.lock();
    await assert.rejects(collect(store.layerTar(top)), /shorter than its recorded size/);
  }
  // A directory replaced by a symlink must not be followed out of the layer.
  await Deno.remove(`${root}/overlay/${top}/diff/data`, { recursive: true });
  await Deno.symlink(`${root}/overlay/${base}/diff/data`, `${root}/overlay/${top}/diff/data`);
  {
    using _ = await store.lock();
    assert.throws(() => store.resolveContent(top, "data/extra/added.txt"), /goes through a symlink/);
  }
});

Deno.test("cstor: an image stored from gzip blobs serves its layers by blob digest, uncompressed", async () => {
  requireRoot();
  await using dir = await scratchDir("bootcfs-cstor-");
  await using first = await overlayStore(`${dir.path}/a`);
  await loadCustom(first, dir.path);
  // oci-archive compresses the layers; loading it stores the gzip blobs' manifest as is.
  await first.podman("save", "-q", "--format", "oci-archive", "-o", `${dir.path}/oci.tar`, CUSTOM);
  await using second = await overlayStore(`${dir.path}/b`);
  await second.podman("load", "-q", "-i", `${dir.path}/oci.tar`);
  const name = (await second.podman("images", "--format", "{{.ID}}")).trim();
  const src = await ContainersStorageSource.open(`containers-storage:[${second.root}]${name}`);
  const img = await loadImage(src);
  assert.equal(img.layers.length, 3);
  for (const [i, l] of img.layers.entries()) {
    assert.match(l.descriptor.mediaType, /gzip/);
    assert.notEqual(l.descriptor.digest, l.diffId);
    assert.equal(src.layers[i].layer.compressedDigest, l.descriptor.digest);
    const tar = await collect(decompressLayer(await src.getBlob(l.descriptor), l.descriptor.mediaType));
    assert.equal(sha256(tar), l.diffId);
    assert.deepEqual(tar, customLayers()[i]);
  }
  // The stored manifest is the one podman wrote, byte for byte.
  const stored = await Deno.readFile(`${second.root}/overlay-images/${src.image.id}/manifest`);
  assert.deepEqual(img.manifest.bytes, stored);
});

Deno.test("cstor: a layer file changed on disk fails its CRC-64 check", async () => {
  requireRoot();
  await using dir = await scratchDir("bootcfs-cstor-");
  await using store = await overlayStore(dir.path);
  await loadCustom(store, dir.path);
  const src = await ContainersStorageSource.open(`containers-storage:[${store.root}]${CUSTOM}`);
  const base = src.layers[0];
  const victim = `${store.root}/overlay/${base.layer.id}/diff/data/s4096`;
  const data = await Deno.readFile(victim);
  data[100] ^= 0xff; // same size, different content
  await Deno.writeFile(victim, data);
  const repo = initRepo(`${dir.path}/repo`);
  try {
    using _ = await src.store.lock();
    await assert.rejects(
      importStorageLayer(repo, src.store, base.layer),
      (e: Error) =>
        /stored from .*data\/s4096/.test(String((e.cause as Error).message)) &&
        /"data\/s4096" .* does not match its CRC-64/.test(String(((e.cause as Error).cause as Error).message)),
    );
    assert.equal(repo.hasStream(`oci-layer-${base.diffId}`), null);
    await assert.rejects(collect(src.layerStream(base)), /CRC-64/);
    // Without the check the import goes through, and the stream no longer hashes to the diff_id.
    const r = await importStorageLayer(repo, src.store, base.layer, { verifyCrc: false });
    const h = createHash("sha256");
    await repo.catStream(
      `oci-layer-${base.diffId}`,
      new WritableStream({ write: (c) => void h.update(c) }).getWriter(),
    );
    assert.notEqual(`sha256:${h.digest("hex")}`, base.diffId);
    assert.equal(r.stats.layers, 1);
  } finally {
    repo.close();
  }
});
