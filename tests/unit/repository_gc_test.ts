// GC over hand-built repositories with known live and garbage objects (composefs-formats.md §6),
// fsck and crash leftovers (§1.8), and the repository lock (§1.7).
import assert from "node:assert/strict";
import { scratchDir } from "../helpers/fs.ts";
import { GOLDEN_OBJECTS } from "../helpers/golden.ts";
import { gen } from "../helpers/oci.ts";
import { VECTORS } from "../helpers/paths.ts";
import { contentType } from "../../lib/splitstream/mod.ts";
import { fsck, gc, type ImageObjects, type ObjectId, Repository } from "../../lib/repository/mod.ts";
import { erofsImageObjects } from "../../lib/commands/repo.ts";

const te = new TextEncoder();
const GOLDEN_IMAGE = Deno.readFileSync(`${VECTORS}/erofs/default.cfs`);
const GOLDEN_IDS = Deno.readTextFileSync(`${VECTORS}/erofs/objects.txt`).trim().split("\n").map((l) =>
  l.replace("/", "")
);

function init(path: string, alg: "sha256" | "sha512" = "sha256"): Repository {
  return Repository.init(path, { alg, formats: { default: 1, extra: [] }, insecure: true }).repo;
}

/** Every object file in the repository, as ids. */
function objectsOnDisk(repo: Repository): Set<string> {
  const out = new Set<string>();
  for (const d of Deno.readDirSync(`${repo.path}/objects`)) {
    if (!d.isDirectory) continue;
    for (const f of Deno.readDirSync(`${repo.path}/objects/${d.name}`)) out.add(d.name + f.name);
  }
  return out;
}

function size(repo: Repository, id: ObjectId): number {
  return Deno.statSync(repo.objectPath(id)).size;
}

/** A stream of `inline` text plus external objects made from `blobs`; returns its id and its objects. */
function stream(repo: Repository, name: string, blobs: string[], named: Record<string, ObjectId> = {}, ref?: string) {
  const w = repo.createStreamWriter(contentType("ocilayer"));
  w.writeInline(te.encode(`head of ${name}`));
  const ids = blobs.map((b) => repo.writeExternal(w, te.encode(b.repeat(100))));
  for (const [k, v] of Object.entries(named)) w.addNamedStreamRef(k, v);
  return { id: repo.writeStream(w, name, ref), ids };
}

Deno.test("the erofs reader finds exactly the golden image's objects (objects.txt)", () => {
  assert.deepEqual(new Set(erofsImageObjects(GOLDEN_IMAGE, "sha256")), new Set(GOLDEN_IDS));
  assert.throws(
    () => erofsImageObjects(GOLDEN_IMAGE, "sha512"),
    /sha256 object in a sha512 repository|not a sha512 object path/,
  );
});

Deno.test("gc removes exactly the unreachable objects, then the dangling links", async () => {
  await using dir = await scratchDir();
  using repo = init(`${dir.path}/r`);
  // Live through images/refs: the golden image and its six objects (content from the README's gen()).
  const golden = GOLDEN_OBJECTS.map((o) => repo.ensureObject(gen(o.size, o.seed)).id);
  assert.deepEqual(new Set(golden), new Set(GOLDEN_IDS));
  const image = repo.writeImage(GOLDEN_IMAGE, "deploy/current");
  // Garbage: an image nobody refers to (its link is pruned), loose objects.
  const strayImage = repo.writeImage(gen(4096 * 3, "stray-image"));
  const loose = [repo.ensureObject(gen(5000, "loose1")).id, repo.ensureObject(gen(70, "loose2")).id];
  // Live through streams/refs: manifest → (named) config → (named) layer; plus a non-stream named ref.
  const layer = stream(repo, "oci-layer-sha256:l1", ["a", "shared"]);
  const config = stream(repo, "oci-config-sha256:c1", ["configjson"], {
    "sha256:l1": layer.id,
    "composefs.image.v1": image,
  });
  const manifest = stream(
    repo,
    "oci-manifest-sha256:m1",
    ["manifestjson"],
    { "config:sha256:c1": config.id },
    "oci/app",
  );
  // Live only because named with --root.
  const rooted = stream(repo, "oci-blob-sha256:r1", ["rooted"]);
  // Garbage: a stream without ref, sharing one object with the live layer.
  const orphan = stream(repo, "oci-layer-sha256:o1", ["orphan", "shared"]);
  // A left-over temporary file is not GC's business.
  Deno.writeTextFileSync(`${repo.path}/objects/.tmp-object-AAAAAAAAAAAA`, "partial");

  const live = new Set<string>([
    ...golden,
    image,
    layer.id,
    ...layer.ids,
    config.id,
    ...config.ids,
    manifest.id,
    ...manifest.ids,
    rooted.id,
    ...rooted.ids,
  ]);
  const garbage = [strayImage, ...loose, orphan.id, orphan.ids[0]] as ObjectId[];
  assert.deepEqual(new Set([...objectsOnDisk(repo)].filter((o) => !live.has(o))), new Set(garbage));
  const garbageBytes = garbage.reduce((a, id) => a + size(repo, id), 0);
  const opts = { roots: ["oci-blob-sha256:r1"], imageObjects: erofsImageObjects };

  const dry = await gc(repo, { ...opts, dryRun: true });
  assert.deepEqual(dry, {
    objectsRemoved: garbage.length,
    bytesFreed: garbageBytes,
    imagesPruned: 1,
    streamsPruned: 1,
    liveObjects: live.size,
  });
  assert.equal(objectsOnDisk(repo).size, live.size + garbage.length);

  const result = await gc(repo, opts);
  assert.deepEqual(result, dry);
  assert.deepEqual(objectsOnDisk(repo), live);
  assert.deepEqual([...Deno.readDirSync(`${repo.path}/images`)].map((e) => e.name).sort(), [image, "refs"].sort());
  assert.deepEqual(
    [...Deno.readDirSync(`${repo.path}/streams`)].map((e) => e.name).sort(),
    ["oci-blob-sha256:r1", "oci-config-sha256:c1", "oci-layer-sha256:l1", "oci-manifest-sha256:m1", "refs"],
  );
  assert.ok(Deno.statSync(`${repo.path}/objects/.tmp-object-AAAAAAAAAAAA`).isFile);
  // Idempotent, and without --root the rooted stream goes next.
  assert.equal((await gc(repo, opts)).objectsRemoved, 0);
  const again = await gc(repo, { imageObjects: erofsImageObjects });
  assert.deepEqual([again.objectsRemoved, again.streamsPruned], [2, 1]);
  assert.equal(repo.hasObject(rooted.id), false);
});

Deno.test("gc: a ref to a missing entry is pruned; an image root without a reader or with a corrupt image aborts", async () => {
  await using dir = await scratchDir();
  using repo = init(`${dir.path}/r`, "sha512");
  const s = stream(repo, "gone", ["x"], {}, "points/at/gone");
  Deno.removeSync(repo.objectPath(s.id)); // a crash of an older tool: link to a missing object
  const r = await gc(repo);
  assert.equal(r.streamsPruned, 1);
  assert.deepEqual(repo.listRefs("streams"), []);
  assert.equal(repo.hasObject(s.ids[0]), false);

  const img = repo.writeImage(gen(8192, "not an erofs image"), "bad");
  await assert.rejects(gc(repo), /no EROFS reader is available/);
  await assert.rejects(gc(repo, { imageObjects: erofsImageObjects }), /image .* is invalid/);
  assert.equal(repo.hasObject(img), true); // nothing was deleted
  const alien: ImageObjects = () => ["00".repeat(64) as ObjectId];
  assert.equal((await gc(repo, { imageObjects: alien })).objectsRemoved, 0);
});

Deno.test("lock: gc waits for, or with a timeout refuses, other users (in-process and a flock(1) holder)", async () => {
  await using dir = await scratchDir();
  const path = `${dir.path}/r`;
  using repo = init(path);
  const reader = Repository.open(path); // holds a shared lock, like a running cfsctl or bootcfs
  await assert.rejects(gc(repo, { lockWaitMs: 150 }), /in use by another process \(bootcfs or cfsctl\)/);
  reader.close();
  assert.equal((await gc(repo, { lockWaitMs: 150 })).objectsRemoved, 0);

  // Another process holding the shared lock (as a running cfsctl does): we wait, then run.
  const holder = new Deno.Command("flock", { args: ["-s", path, "sleep", "0.6"] }).spawn();
  await new Promise((r) => setTimeout(r, 200));
  let waited = 0;
  const t0 = Date.now();
  await gc(repo, { onWait: () => waited++ });
  assert.equal(waited, 1);
  assert.ok(Date.now() - t0 >= 250, `gc returned after ${Date.now() - t0} ms`);
  await holder.status;
  // While we hold the repository open, an external exclusive locker cannot get in.
  const probe = await new Deno.Command("flock", { args: ["-x", "-n", path, "true"] }).output();
  assert.equal(probe.code, 1);
});

Deno.test("fsck finds crash leftovers and damage by path; --repair removes them; objects heal on re-import", async () => {
  await using dir = await scratchDir();
  using repo = init(`${dir.path}/r`, "sha512");
  const ok = stream(repo, "ok", ["fine"], {}, "ok-ref");
  const victim = stream(repo, "victim", ["will be truncated"], {}, "victim-ref");
  const lost = stream(repo, "lost", ["y"], {}, "lost-ref");
  assert.deepEqual(fsck(repo).problems, []);

  Deno.writeTextFileSync(`${repo.path}/objects/.tmp-object-BBBBBBBBBBBB`, "partial");
  const truncated = victim.ids[0];
  const original = Deno.readFileSync(repo.objectPath(truncated));
  Deno.truncateSync(repo.objectPath(truncated), 10);
  Deno.removeSync(repo.objectPath(lost.id));
  Deno.symlinkSync("/etc/passwd", `${repo.path}/streams/evil`);

  const sub = (id: string) => `objects/${id.slice(0, 2)}/${id.slice(2)}`;
  const found = fsck(repo).problems.map((p) => `${p.path}: ${p.problem}`);
  const expect = [
    /^objects\/\.tmp-object-BBBBBBBBBBBB: left-over temporary file/,
    new RegExp(`^${sub(truncated)}: content does not match its name`),
    /^streams\/evil: target "\/etc\/passwd" is not an object of this repository/,
    new RegExp(`^streams/lost: points to missing object ${lost.id}`),
    new RegExp(`^streams/victim: refers to 1 missing or damaged object\\(s\\)`),
    /^streams\/refs\/lost-ref: refers to streams\/lost, which is missing or broken/,
    /^streams\/refs\/victim-ref: refers to streams\/victim/,
  ];
  assert.equal(found.length, expect.length, found.join("\n"));
  expect.forEach((re, i) => assert.match(found[i], re));
  assert.equal(Deno.readTextFileSync("/etc/passwd").length > 0, true);

  const repaired = fsck(repo, { repair: true });
  assert.ok(repaired.problems.every((p) => p.repaired), JSON.stringify(repaired.problems));
  assert.deepEqual(fsck(repo).problems, []);
  assert.deepEqual(repo.listRefs("streams").map((r) => r.name), ["ok-ref"]);
  assert.equal(repo.openStream("refs/ok-ref").objectRefs[0], ok.ids[0]);

  // The damaged object's content comes back on the next import of the same data.
  assert.equal(repo.hasObject(truncated), false);
  assert.equal(repo.ensureObject(original).method, "copied");
  repo.sync();
  Deno.truncateSync(repo.objectPath(truncated), 3); // damaged again: replaced, not trusted as present
  assert.equal(repo.ensureObject(original).method, "copied");
  repo.sync();
  assert.deepEqual(Deno.readFileSync(repo.objectPath(truncated)), original);
});

Deno.test("crash before sync: a killed writer leaves no named object and no link, only what was synced", async () => {
  await using dir = await scratchDir();
  const path = `${dir.path}/r`;
  init(path, "sha512").close();
  const mod = new URL("../../lib/repository/mod.ts", import.meta.url).href;
  const script = `
    import { Repository } from ${JSON.stringify(mod)};
    const repo = Repository.open(${JSON.stringify(path)});
    const w = repo.createStreamWriter(0n);
    repo.writeExternal(w, new TextEncoder().encode("synced ".repeat(20)));
    repo.writeStream(w, "synced-stream", "kept");
    repo.ensureObject(new TextEncoder().encode("never synced ".repeat(20)));
    console.log("stored");
    Deno.kill(Deno.pid, "SIGKILL");
  `;
  const r = await new Deno.Command(Deno.execPath(), { args: ["eval", script], stdout: "piped", stderr: "piped" })
    .output();
  assert.equal(new TextDecoder().decode(r.stdout).trim(), "stored", new TextDecoder().decode(r.stderr));
  assert.equal(r.signal, "SIGKILL");
  using repo = Repository.open(path);
  const s = repo.openStream("refs/kept");
  assert.equal(objectsOnDisk(repo).size, 2); // the synced stream and its object, nothing else
  assert.ok(objectsOnDisk(repo).has(s.objectRefs[0]));
  assert.deepEqual(fsck(repo).problems, []);
});
