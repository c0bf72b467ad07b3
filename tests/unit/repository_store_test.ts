// Repository objects, streams, images and refs, written by lib/repository and read back by an
// independent path: `fsverity digest` for object names, `jq` for meta.json, readlink for links.
import assert from "node:assert/strict";
import { run } from "../helpers/cli.ts";
import { scratchDir } from "../helpers/fs.ts";
import { contentType } from "../../lib/splitstream/mod.ts";
import { encodeTag, gc, type ObjectId, Repository } from "../../lib/repository/mod.ts";

const te = new TextEncoder();
const alnum = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7) % 251);

function lexists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function init(path: string, alg: "sha256" | "sha512" = "sha512"): Repository {
  return Repository.init(path, { alg, formats: { default: 1, extra: [] }, insecure: true }).repo;
}

async function fsverityDigest(path: string, alg: string): Promise<string> {
  const out = await run("fsverity", ["digest", `--hash-alg=${alg}`, "--block-size=4096", path]);
  return out.split(" ")[0].split(":")[1];
}

async function jq(filter: string, path: string): Promise<string> {
  return (await run("jq", ["-c", filter, path])).trim();
}

Deno.test("init writes meta.json that jq reads as the spec says; re-init is idempotent, a different config is refused", async () => {
  await using dir = await scratchDir();
  const path = `${dir.path}/repo`;
  const { repo, created } = Repository.init(path, {
    alg: "sha512",
    formats: { default: 1, extra: [2] },
    insecure: true,
  });
  repo.close();
  assert.equal(created, true);
  assert.equal(await jq(".version", `${path}/meta.json`), "1");
  assert.equal(await jq(".algorithm", `${path}/meta.json`), '"fsverity-sha512-12"');
  assert.equal(
    await jq(".features", `${path}/meta.json`),
    '{"compatible":[],"read-only-compatible":["v1_erofs"],"incompatible":[]}',
  );
  assert.equal(await jq(".erofs_formats", `${path}/meta.json`), '{"default":1,"extra":[2]}');
  assert.equal(Deno.statSync(path).mode! & 0o777, 0o700);
  const again = Repository.init(path, { alg: "sha512", formats: { default: 1, extra: [2] }, insecure: true });
  again.repo.close();
  assert.equal(again.created, false);
  assert.throws(
    () => Repository.init(path, { alg: "sha256", formats: { default: 1, extra: [] }, insecure: true }),
    /different configuration/,
  );
});

Deno.test("secure init fails clearly without kernel fs-verity and leaves no meta.json", async () => {
  await using dir = await scratchDir();
  assert.throws(
    () => Repository.init(`${dir.path}/r`, { alg: "sha512", formats: { default: 1, extra: [] } }),
    /no fs-verity; use --insecure/,
  );
  assert.throws(() => Deno.statSync(`${dir.path}/r/meta.json`), Deno.errors.NotFound);
});

Deno.test("open: insecure detected and logged; newer/incompatible refused; unknown ro-compat opens read-only", async () => {
  await using dir = await scratchDir();
  const path = `${dir.path}/r`;
  init(path).close();
  const logs: string[] = [];
  const repo = Repository.open(path, { log: (m) => logs.push(m) });
  assert.equal(repo.insecure, true);
  assert.match(logs.join("\n"), /insecure/);
  repo.close();
  const meta = JSON.parse(Deno.readTextFileSync(`${path}/meta.json`));
  const write = (m: unknown) => Deno.writeTextFileSync(`${path}/meta.json`, JSON.stringify(m));
  write({ ...meta, version: 2 });
  assert.throws(() => Repository.open(path), /version 2 is newer/);
  write({ ...meta, features: { ...meta.features, incompatible: ["future"] } });
  assert.throws(() => Repository.open(path), /incompatible features.*future/);
  write({ ...meta, features: { ...meta.features, "read-only-compatible": ["v1_erofs", "v9_erofs"] } });
  const ro = Repository.open(path);
  assert.equal(ro.access.mode, "read-only");
  assert.throws(() => ro.ensureObject(te.encode("x")), /read-only: .*v9_erofs/);
  ro.close();
  write({ ...meta, algorithm: "fsverity-sha256-16" });
  assert.throws(() => Repository.open(path), /4096-byte blocks/);
  Deno.removeSync(`${path}/meta.json`);
  assert.throws(() => Repository.open(path), /not a composefs repository/);
  Deno.mkdirSync(`${path}/objects`);
  assert.throws(() => Repository.open(path), /before 0\.7/);
});

Deno.test("an object whose producer fails leaves nothing behind; one written in pieces is stored once", async () => {
  await using dir = await scratchDir();
  using repo = init(`${dir.path}/repo`);
  const data = alnum(10_000, 5);
  repo.ensureObject(alnum(100, 6)); // objects/ and its directory fd exist before the count
  const fds = () => [...Deno.readDirSync("/proc/self/fd")].length;
  const before = fds();
  assert.throws(
    () =>
      repo.ensureObjectWritten((write) => {
        write(data.subarray(0, 5000));
        throw new Error("producer failed");
      }),
    /producer failed/,
  );
  assert.equal(fds(), before, "the staging file is closed");
  repo.sync();
  const files = (d: string): string[] =>
    [...Deno.readDirSync(d)].flatMap((e) => e.isDirectory ? files(`${d}/${e.name}`) : [`${d}/${e.name}`]);
  assert.equal(files(`${repo.path}/objects`).length, 1, "only the first object");
  const id = repo.writeImage((write) => {
    write(data.subarray(0, 4096));
    write(data.subarray(4096));
  }, "written");
  assert.equal(id, repo.ensureObject(data).id);
  assert.deepEqual(Deno.readFileSync(`${repo.path}/images/refs/written`), data);
});

Deno.test("objects from bytes, streams and files are named by their fs-verity digest (checked with fsverity digest)", async () => {
  await using dir = await scratchDir();
  for (const alg of ["sha256", "sha512"] as const) {
    using repo = init(`${dir.path}/${alg}`, alg);
    const inputs = [new Uint8Array(0), te.encode("hello world"), alnum(4096, 1), alnum(4097, 2), alnum(300_000, 3)];
    for (const data of inputs) {
      const a = repo.ensureObject(data);
      assert.equal(a.method, "copied");
      // Named only once its data is on disk (sync); until then it is stored but has no name.
      assert.equal(lexists(repo.objectPath(a.id)), false);
      assert.equal(repo.hasObject(a.id), true);
      assert.deepEqual(repo.readObject(a.id), data);
      repo.sync();
      assert.equal(await fsverityDigest(repo.objectPath(a.id), alg), a.id);
      assert.deepEqual(Deno.readFileSync(repo.objectPath(a.id)), data);
      assert.equal(repo.ensureObject(data).method, "present");
      // Streaming in odd-sized pieces hashes the same (the pre-d409ec7 bug would not).
      const pieces = async function* () {
        for (let o = 0; o < data.length; o += 1000) yield data.subarray(o, o + 1000);
      };
      const b = await repo.ensureObjectFromStream(pieces());
      assert.deepEqual([b.id, b.method, b.size], [a.id, "present", data.length]);
      const c = repo.ensureObjectWritten((write) => {
        for (let o = 0; o < data.length; o += 777) write(data.subarray(o, o + 777));
      });
      assert.deepEqual([c.id, c.method, c.size], [a.id, "present", data.length]);
    }
    const file = `${dir.path}/input-${alg}`;
    Deno.writeFileSync(file, alnum(2_000_000, 9));
    const f = repo.ensureObjectFromFile(file);
    assert.equal(f.id, await fsverityDigest(file, alg));
    assert.notEqual(f.method, "present");
    assert.equal(repo.ensureObjectFromFile(file).method, "present");
    // copyOnly: the data is copied (copy_file_range), never linked to the source.
    Deno.writeFileSync(`${file}-2`, alnum(1_500_001, 10));
    const copied = repo.ensureObjectFromFile(`${file}-2`, { copyOnly: true });
    repo.sync();
    assert.deepEqual([copied.method, copied.size], ["copied", 1_500_001]);
    assert.equal(await fsverityDigest(repo.objectPath(copied.id), alg), copied.id);
    assert.equal(Deno.statSync(`${file}-2`).nlink, 1);
    assert.deepEqual(repo.readObject(f.id), alnum(2_000_000, 9));
    assert.ok(["reflinked", "hardlinked"].includes(f.method), f.method); // source and repository share a filesystem
    // Nothing is left in objects/ but the XX directories.
    assert.deepEqual([...Deno.readDirSync(`${repo.path}/objects`)].filter((e) => !e.isDirectory), []);
  }
});

Deno.test("a full queue is named in the background, and a sync or flush meanwhile names everything once", async () => {
  await using dir = await scratchDir();
  using repo = init(`${dir.path}/r`);
  const data = (i: number) => te.encode(`object ${i}`);
  const ids = new Set<ObjectId>();
  const named = () =>
    [...Deno.readDirSync(`${repo.path}/objects`)].reduce(
      (a, d) => a + [...Deno.readDirSync(`${repo.path}/objects/${d.name}`)].length,
      0,
    );
  // A background flush starts at 1024 queued objects, long before the fd bound (4096).
  for (let i = 0; i < 1100; i++) ids.add(repo.ensureObject(data(i)).id);
  for (const until = Date.now() + 10_000; named() < 1024 && Date.now() < until;) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(named(), 1024);
  // More than twice the fd bound: with no event loop turn in between, the queue grows while the
  // flush started at 1024 runs, and at 2 × 4096 the store waits for a synchronous sync.
  const n = 2 * 4096 + 500;
  for (let i = 1100; i < n; i++) ids.add(repo.ensureObject(data(i)).id);
  // With event loop turns in between (as an import's reads give), background flushes complete.
  for (let i = n; i < n + 5000; i++) {
    ids.add(
      (await repo.ensureObjectFromStream((async function* () {
        yield data(i);
      })())).id,
    );
    if (i % 100 === 0) await new Promise((r) => setTimeout(r, 0));
  }
  // The last background flush names its batch once its syncfs returns (no sync() call needed).
  for (const until = Date.now() + 10_000; named() <= 2 * 4096 && Date.now() < until;) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(named() > 2 * 4096, `${named()} named before sync`);
  repo.sync();
  assert.equal(ids.size, n + 5000);
  assert.equal(named(), ids.size);
  // flush() names what is queued (with a background flush running or not) without a sync().
  for (let i = 0; i < 5000; i++) ids.add(repo.ensureObject(data(n + 5000 + i)).id);
  assert.ok(named() < ids.size);
  await repo.flush();
  assert.equal(named(), ids.size);
  for (const [i, id] of [...ids].entries()) {
    if (i % 997 === 0) assert.equal(await fsverityDigest(repo.objectPath(id), "sha512"), id);
  }
});

Deno.test("streams, images, refs and tags: links exactly as composefs-rs writes them, atomic replacement", async () => {
  await using dir = await scratchDir();
  using repo = init(`${dir.path}/r`);
  const w = repo.createStreamWriter(contentType("ocilayer"));
  w.writeInline(te.encode("header"));
  const big = alnum(5000, 4);
  const ext = repo.writeExternal(w, big);
  w.writeInline(te.encode("trailer"));
  const layerId = repo.writeStream(w, "oci-layer-sha256:aa", "layers/one");
  const sub = (id: string) => `${id.slice(0, 2)}/${id.slice(2)}`;
  assert.equal(Deno.readLinkSync(`${repo.path}/streams/oci-layer-sha256:aa`), `../objects/${sub(layerId)}`);
  assert.equal(Deno.readLinkSync(`${repo.path}/streams/refs/layers/one`), "../../oci-layer-sha256:aa");
  assert.equal(repo.hasStream("oci-layer-sha256:aa"), layerId);
  assert.equal(repo.hasStream("nothing-here"), null);
  assert.equal(await fsverityDigest(repo.objectPath(layerId), "sha512"), layerId);

  const s = repo.openStream("refs/layers/one", contentType("ocilayer"));
  assert.deepEqual(s.objectRefs, [ext]);
  assert.throws(() => repo.openStream("oci-layer-sha256:aa", contentType("ociconfg")), /content type/);
  const chunks: Uint8Array[] = [];
  await repo.catStream("oci-layer-sha256:aa", new WritableStream({ write: (c) => void chunks.push(c) }).getWriter());
  assert.deepEqual(
    new Uint8Array(chunks.flatMap((c) => [...c])),
    new Uint8Array([...te.encode("header"), ...big, ...te.encode("trailer")]),
  );

  // A manifest stream naming the layer, tagged; re-tagging replaces the link atomically.
  const m = repo.createStreamWriter(contentType("ocimanif"));
  m.addNamedStreamRef("sha256:aa", layerId);
  repo.writeExternal(m, te.encode(JSON.stringify({ schemaVersion: 2, padding: "x".repeat(80) })));
  const manifestId = repo.writeStream(m, "oci-manifest-sha256:bb");
  repo.nameStream("oci-manifest-sha256:bb", `oci/${encodeTag("localhost/app:1")}`);
  assert.equal(Deno.readLinkSync(`${repo.path}/streams/refs/oci/localhost%2Fapp:1`), "../../oci-manifest-sha256:bb");
  assert.deepEqual(repo.resolve("streams", "refs/oci/localhost%2Fapp:1"), {
    entry: "oci-manifest-sha256:bb",
    id: manifestId,
  });
  repo.nameStream("oci-layer-sha256:aa", `oci/${encodeTag("localhost/app:1")}`);
  assert.equal(Deno.readLinkSync(`${repo.path}/streams/refs/oci/localhost%2Fapp:1`), "../../oci-layer-sha256:aa");
  assert.deepEqual(repo.listRefs("streams").map((r) => r.name), ["layers/one", "oci/localhost%2Fapp:1"]);
  assert.deepEqual([...Deno.readDirSync(repo.path)].map((e) => e.name).filter((n) => n.startsWith(".symlink-")), []);

  const imageId = repo.writeImage(alnum(8192, 5), "deploy/a");
  assert.equal(Deno.readLinkSync(`${repo.path}/images/${imageId}`), `../objects/${sub(imageId)}`);
  assert.equal(Deno.readLinkSync(`${repo.path}/images/refs/deploy/a`), `../../${imageId}`);
  assert.equal(repo.removeRef("images", "deploy/a"), true);
  assert.equal(repo.removeRef("images", "deploy/a"), false);
  assert.throws(() => repo.nameStream("x", "../escape"), /invalid ref name/);
  assert.throws(() => repo.writeStream(repo.createStreamWriter(0n), "a/b"), /invalid stream name/);
});

Deno.test("hostile links: a stream symlink pointing outside the repository is refused, never followed", async () => {
  await using dir = await scratchDir();
  using repo = init(`${dir.path}/r`);
  const w = repo.createStreamWriter(0n);
  w.writeInline(te.encode("ok"));
  const good = repo.writeStream(w, "good");
  Deno.writeTextFileSync(`${dir.path}/secret`, "outside");
  // An absolute link, a relative escape, and one that reaches a real object through `..` games.
  Deno.symlinkSync(`${dir.path}/secret`, `${repo.path}/streams/evil-abs`);
  Deno.symlinkSync("../../secret", `${repo.path}/streams/evil-rel`);
  Deno.symlinkSync(`../objects/../objects/${good.slice(0, 2)}/${good.slice(2)}`, `${repo.path}/streams/evil-dots`);
  Deno.mkdirSync(`${repo.path}/streams/refs`, { recursive: true });
  Deno.symlinkSync("/etc/passwd", `${repo.path}/streams/refs/evil-ref`);
  for (const name of ["evil-abs", "evil-rel", "evil-dots"]) {
    assert.throws(() => repo.openStream(name), /refusing .* not an object of this repository/, name);
    assert.throws(() => repo.hasStream(name), /refusing/);
  }
  assert.throws(() => repo.openStream("refs/evil-ref"), /refusing .* not a streams entry/);
  assert.throws(() => repo.openStream("../secret"), /invalid stream name/);
  assert.equal(repo.openStream("good").streamSize, 2);
  // GC drops the hostile links themselves (never what they point at) and keeps the good stream.
  Deno.symlinkSync("../good", `${repo.path}/streams/refs/good`);
  const r = await gc(repo);
  assert.deepEqual([r.streamsPruned, r.objectsRemoved], [3, 0]);
  assert.deepEqual([...Deno.readDirSync(`${repo.path}/streams`)].map((e) => e.name).sort(), ["good", "refs"]);
  assert.deepEqual(repo.listRefs("streams").map((x) => x.name), ["good"]);
  assert.equal(Deno.readTextFileSync(`${dir.path}/secret`), "outside");
  assert.equal(repo.hasObject(("ff".repeat(64)) as ObjectId), false);
});
