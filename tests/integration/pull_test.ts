/**
 * `bootcfs pull` end to end: Debian's docker-registry on 127.0.0.1 with the rig's images, the
 * direct path (native registry client) and the unified path (real podman service, overlay store
 * under the target root, zero-copy import), auth, corrupt blobs, a missing podman, progress modes,
 * `--json` and the journal records.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { unifiedStore } from "../../lib/podman/unified.ts";
import { Repository } from "../../lib/repository/mod.ts";
import { bootcfs, bootcfsCommand, spawnBootcfs } from "../helpers/cli.ts";
import { createLoopFs, requireRoot, run, scratchDir } from "../helpers/fs.ts";
import { bootcfsUnderJournal, fakeJournal } from "../helpers/journal.ts";
import { pushTestImages, startRegistry, uploadBlob } from "../helpers/rig.ts";
import { randomBytes } from "../helpers/oci.ts";

const PULL_ID = "4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8";

interface PullJson {
  manifestDigest: string;
  manifestVerity: string;
  configDigest: string;
  configVerity: string;
  imageId: string;
  tag: string;
  unified: boolean;
  alreadyPresent: boolean;
  stats: Record<string, number>;
}

/** A target root with an (insecure: loop filesystems have no fs-verity) repository at ROOT/sysroot/composefs. */
function initRoot(root: string): string {
  const repo = `${root}/sysroot/composefs`;
  Deno.mkdirSync(`${root}/sysroot`, { recursive: true });
  Repository.init(repo, { alg: "sha512", formats: { default: 1, extra: [] }, insecure: true }).repo.close();
  return repo;
}

/** Tags of the repository at `repo` (`streams/refs/oci/` entries, decoded). */
function tags(repo: string): string[] {
  try {
    return [...Deno.readDirSync(`${repo}/streams/refs/oci`)].map((e) => decodeURIComponent(e.name)).sort();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

/**
 * Pushes `host/rig/big:1`: one uncompressed tar layer holding `mib` MiB of random data, so that a
 * transfer lasts long enough to be interrupted.
 */
async function pushBigImage(host: string, mib: number): Promise<string> {
  const size = mib << 20;
  const header = new Uint8Array(512);
  const enc = new TextEncoder();
  const field = (off: number, text: string) => header.set(enc.encode(text), off);
  field(0, "big.bin");
  field(100, "0000644\0");
  field(108, "0000000\0");
  field(116, "0000000\0");
  field(124, size.toString(8).padStart(11, "0") + "\0");
  field(136, "14000000000\0");
  field(156, "0");
  field(257, "ustar\x0000");
  field(148, "        ");
  const sum = header.reduce((a, b) => a + b, 0);
  field(148, sum.toString(8).padStart(6, "0") + "\0 ");
  const tar = new Uint8Array(512 + size + 1024);
  tar.set(header);
  tar.set(randomBytes(size), 512);
  const layer = await uploadBlob(host, "rig/big", tar);
  const config = enc.encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    rootfs: { type: "layers", diff_ids: [layer.digest] },
    config: {},
  }));
  const cfg = await uploadBlob(host, "rig/big", config);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...cfg },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layer }],
  });
  const res = await fetch(`http://${host}/v2/rig/big/manifests/1`, {
    method: "PUT",
    body: manifest,
    headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
  });
  await res.body?.cancel();
  if (res.status !== 201) throw new Error(`pushing rig/big:1: HTTP ${res.status}`);
  return `${host}/rig/big:1`;
}

/** Polls `check` every 20 ms for up to `ms`; true once it returned true. */
async function waitFor(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

/** PIDs whose command line contains every one of `marks`. */
function pidsWith(...marks: string[]): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).replaceAll("\0", " ");
      if (marks.every((m) => cmd.includes(m))) out.push(Number(e.name));
    } catch {
      // Gone in between.
    }
  }
  return out;
}

const usedBytes = async (mnt: string) => Number((await run("df", ["--output=used", "-B1", mnt])).split("\n")[1].trim());

Deno.test("bootcfs pull: direct and unified", async (t) => {
  requireRoot();
  await using dir = await scratchDir("bootcfs-pull-it-");
  await using reg = await startRegistry(dir.path);
  const images = await pushTestImages(dir.path, reg.host);
  await using xfs = await createLoopFs("xfs", { sizeMiB: 400 });
  const pullArgs = (root: string, ref: string, ...extra: string[]) => [
    "--root",
    root,
    "--insecure",
    "pull",
    ref,
    "--tls-verify=false",
    ...extra,
  ];
  let direct: PullJson | undefined;
  // Unified pulls leave their run roots under /run/bootcfs (as bootc leaves /run/bootc/storage).
  const unifiedRoots: string[] = [];
  await using _runroots = {
    async [Symbol.asyncDispose]() {
      for (const r of unifiedRoots) await Deno.remove(unifiedStore(r).runroot, { recursive: true }).catch(() => {});
    },
  };

  await t.step("direct pull of rig/layered:1: --json result, bootc tag, journal records", async () => {
    const root = `${xfs.mountPoint}/direct`;
    const repo = initRoot(root);
    const journal = fakeJournal(dir.path);
    try {
      const r = await bootcfsUnderJournal(journal, dir.path, pullArgs(root, images.layered, "--json"));
      assert.equal(r.code, 0, r.stderr);
      direct = JSON.parse(r.stdout) as PullJson;
      assert.equal(direct.manifestDigest, images.digests[images.layered]);
      assert.equal(direct.tag, `localhost/bootc-${direct.manifestDigest}`);
      assert.match(direct.imageId, /^[0-9a-f]{128}$/);
      assert.equal(direct.unified, false);
      assert.deepEqual(tags(repo), [direct.tag]);
      // The config digest is the sha256 of the config podman pushed (checked with skopeo).
      const config = await run("skopeo", [
        "inspect",
        "--config",
        "--raw",
        "--tls-verify=false",
        `docker://${images.layered}`,
      ]);
      assert.equal(direct.configDigest, `sha256:${createHash("sha256").update(config).digest("hex")}`);
      const recs = journal.drain().filter((x) => x.F_MESSAGE_ID === PULL_ID);
      assert.equal(recs.length, 2, JSON.stringify(journal.drain()));
      assert.equal(recs[0].MESSAGE, `Pulling composefs image ${images.layered}`);
      assert.equal(recs[0].F_BOOTC_OPERATION, "pull");
      assert.equal(recs[0].F_BOOTC_SOURCE_IMAGE, images.layered);
      assert.equal(recs[0].F_BOOTC_TRANSPORT, "registry");
      assert.equal(recs[0].F_BOOTC_ALLOW_MISSING_FSVERITY, "true");
      assert.equal(recs[0].F_BOOTC_UNIFIED_STORAGE, "false");
      assert.equal(recs[0].PRIORITY, "5");
      assert.equal(recs[1].MESSAGE, "Pulled image into composefs repository");
      assert.equal(recs[1].F_BOOTC_MANIFEST_DIGEST, direct.manifestDigest);
      assert.equal(recs[1].F_BOOTC_MANIFEST_VERITY, direct.manifestVerity);
      assert.equal(recs[1].F_BOOTC_CONFIG_DIGEST, direct.configDigest);
      assert.equal(recs[1].F_BOOTC_CONFIG_VERITY, direct.configVerity);
      assert.equal(recs[1].F_BOOTC_TAG, direct.tag);
    } finally {
      journal.close();
    }
  });

  await t.step("re-pull is a fast no-op; human output names digests, verities and the image", async () => {
    const root = `${xfs.mountPoint}/direct`;
    const used = await usedBytes(xfs.mountPoint);
    const t0 = performance.now();
    const r = await bootcfs(pullArgs(root, images.layered));
    const secs = (performance.now() - t0) / 1000;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^manifest ${direct!.manifestDigest}  verity ${direct!.manifestVerity}$`, "m"));
    assert.match(r.stdout, new RegExp(`^config   ${direct!.configDigest}  verity ${direct!.configVerity}$`, "m"));
    assert.match(r.stdout, new RegExp(`^image    ${direct!.imageId}$`, "m"));
    assert.match(r.stdout, /already present; tagged localhost\/bootc-sha256:/);
    assert.ok(secs < 5, `re-pull took ${secs} s`);
    assert.ok((await usedBytes(xfs.mountPoint)) - used < 64 * 1024);
  });

  await t.step("unified pull with --zero-copy on xfs: same image id, file data reflinked", async () => {
    const root = `${xfs.mountPoint}/unified`;
    unifiedRoots.push(root);
    const repo = initRoot(root);
    const r = await bootcfs(pullArgs(root, images.layered, "--unified", "--zero-copy", "--json"));
    assert.equal(r.code, 0, r.stderr);
    const u = JSON.parse(r.stdout) as PullJson;
    assert.equal(u.unified, true);
    assert.equal(u.imageId, direct!.imageId);
    assert.equal(u.configDigest, direct!.configDigest);
    assert.deepEqual(tags(repo), [u.tag]);
    assert.equal(u.stats.bytesCopied, 0);
    assert.ok(u.stats.bytesReflinked > 1 << 20, JSON.stringify(u.stats));
    assert.equal(u.stats.objectsHardlinked, 0);
    // The store lives where bootc's composefs backend keeps it, and the service is gone.
    const store = `${root}/sysroot/composefs/bootc/storage`;
    assert.ok(Deno.statSync(`${store}/overlay-images`).isDirectory);
    const mounts = await Deno.readTextFile("/proc/self/mountinfo");
    assert.ok(!mounts.includes(store), "overlay mounts left under the store");
    // bootc runs podman on this store with its own fixed paths (bootc-layout.md §5.1), which podman
    // records in the store's database and checks on every start: bootc can use what bootcfs pulled.
    const bootcPodman = (...args: string[]) =>
      run("unshare", [
        "--mount",
        "--",
        "sh",
        "-c",
        'exec 3</run/bootc/storage && mount --bind "$0" /run/bootc/storage && ' +
        'exec podman --root /run/bootc/storage --runroot /proc/self/fd/3 "$@"',
        store,
        ...args,
      ]);
    assert.equal(
      (await bootcPodman("info", "--format", "{{.Store.GraphRoot}} {{.Store.RunRoot}}")).trim(),
      "/run/bootc/storage /proc/self/fd/3",
    );
    assert.match(await bootcPodman("images", "--format", "{{.ID}}", "--no-trunc"), new RegExp(u.configDigest));
    await assert.rejects(
      run("podman", ["--root", store, "--runroot", `${dir.path}/other-run`, "images"]),
      /database configuration mismatch/,
    );
    // The largest object shares its blocks with the store: nothing of it was written again.
    const largest = await run("sh", ["-c", `find ${repo}/objects -type f -printf '%s %p\\n' | sort -n | tail -1`]);
    const path = largest.trim().split(" ")[1];
    const frag = await run("filefrag", ["-v", path]);
    assert.match(frag, /shared/);
  });

  await t.step("unified pull on ext4: hardlinks, same image id", async () => {
    await using ext4 = await createLoopFs("ext4", { sizeMiB: 256 });
    const root = `${ext4.mountPoint}/unified`;
    unifiedRoots.push(root);
    initRoot(root);
    const r = await bootcfs(pullArgs(root, images.layered, "--unified", "--zero-copy", "--json"));
    assert.equal(r.code, 0, r.stderr);
    const u = JSON.parse(r.stdout) as PullJson;
    assert.equal(u.imageId, direct!.imageId);
    assert.equal(u.stats.bytesCopied, 0);
    assert.ok(u.stats.objectsHardlinked > 0, JSON.stringify(u.stats));
  });

  await t.step("progress: JSON lines with a total, plain lines in a pipe, nothing with --quiet", async () => {
    const root = `${dir.path}/progress`;
    initRoot(root);
    const js = await bootcfs(["--progress", "json", ...pullArgs(root, images.bootable)]);
    assert.equal(js.code, 0, js.stderr);
    const events = js.stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    const total = events.filter((e) => e.task === "total");
    assert.ok(total.length > 0, js.stderr);
    const last = total.at(-1);
    assert.equal(last.event, "progress.done");
    assert.equal(last.done, last.total);
    const layerDone = events.filter((e) => e.task.startsWith("layer ") && e.event === "progress.done");
    assert.ok(layerDone.length >= 1);
    assert.equal(last.total, layerDone.reduce((n: number, e: { total: number }) => n + e.total, 0));

    const root2 = `${dir.path}/progress-plain`;
    initRoot(root2);
    const plain = await bootcfs(pullArgs(root2, images.bootable));
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stderr, /^layer [0-9a-f]{12} .*MiB/m);
    assert.match(plain.stderr, /^total .*MiB.*100%/m);
    assert.ok(!plain.stderr.includes("\x1b["));

    const root3 = `${dir.path}/progress-quiet`;
    initRoot(root3);
    const quiet = await bootcfs(["--quiet", ...pullArgs(root3, images.bootable)]);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.equal(quiet.stderr, "");
  });

  await t.step("progress on a terminal: redrawn bars per blob and a total (script -qfc)", async () => {
    const root = `${dir.path}/progress-tty`;
    initRoot(root);
    const [program, argv] = bootcfsCommand(pullArgs(root, images.bootable));
    const cmd = [program, ...argv].map((a) => `'${a}'`).join(" ");
    const out = (await run("script", ["-qfec", cmd, "/dev/null"])).replaceAll("\x1b", "ESC");
    assert.match(out, /ESC\[\d+A/); // cursor moved up: bars are redrawn in place
    assert.match(out, /\[[#-]{24}\] total/);
    assert.match(out, /\[[#-]{24}\] layer [0-9a-f]{12}/);
  });

  const creds = { username: "rig", password: "rig-pass" };
  await t.step("token auth: right credentials pull, wrong ones fail clearly and tag nothing", async () => {
    await using sec = await startRegistry(dir.path, { auth: "token", credentials: creds, dataDir: reg.dataDir });
    const authFile = `${dir.path}/auth.json`;
    const write = (password: string) =>
      Deno.writeTextFile(authFile, JSON.stringify({ auths: { [sec.host]: { auth: btoa(`rig:${password}`) } } }));
    const ref = `${sec.host}/rig/base:1`;
    const bad = `${dir.path}/auth-bad`;
    const badRepo = initRoot(bad);
    await write("wrong");
    const r1 = await bootcfs(pullArgs(bad, ref, "--authfile", authFile));
    assert.equal(r1.code, 1);
    assert.equal(
      r1.stderr.trim().split("\n").at(-1),
      `error: pulling docker://${ref}: ${ref}: the token server ${
        new URL(sec.tokenRealm!).host
      } rejected the credentials (HTTP 401)`,
    );
    assert.deepEqual(tags(badRepo), []);
    await write(creds.password);
    const r2 = await bootcfs(pullArgs(bad, ref, "--authfile", authFile, "--json"));
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(JSON.parse(r2.stdout).manifestDigest, images.digests[images.base]);
    assert.equal(tags(badRepo).length, 1);
  });

  await t.step("--unified without podman in PATH names the Debian package; nothing tagged", async () => {
    const root = `${dir.path}/no-podman`;
    unifiedRoots.push(root);
    const repo = initRoot(root);
    const r = await bootcfs(pullArgs(root, images.base, "--unified"), { env: { PATH: `${dir.path}/empty-bin` } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /"podman" is not in PATH \(install the Debian package podman\)/);
    assert.deepEqual(tags(repo), []);
  });

  const big = await pushBigImage(reg.host, 160);

  await t.step(
    "registry killed mid-blob: a clear error and nothing tagged (or, if it won, a complete pull)",
    async () => {
      await using own = await startRegistry(dir.path, { dataDir: reg.dataDir });
      const ref = big.replace(reg.host, own.host);
      const root = `${dir.path}/killed-registry`;
      const repo = initRoot(root);
      const child = spawnBootcfs(pullArgs(root, ref));
      const blobGet = () =>
        Deno.readTextFile(own.logFile).then((l) =>
          /"GET \/v2\/rig\/big\/blobs\/sha256:\w+ HTTP\/1.1" 200 1677/.test(l)
        );
      assert.ok(await waitFor(blobGet, 60_000), "the layer was never requested");
      await own.stop("SIGKILL");
      const r = await child.output();
      const stderr = new TextDecoder().decode(r.stderr);
      if (r.code === 0) {
        // The whole layer had already arrived: then the pull must be complete and tagged.
        assert.equal(tags(repo).length, 1);
      } else {
        assert.equal(r.code, 1);
        assert.match(
          stderr,
          /error: pulling docker:\/\/.*rig\/big:1: .*(connection lost after \d+ of \d+ bytes|cannot reach)/,
        );
        assert.deepEqual(tags(repo), []);
      }
    },
  );

  await t.step("podman service killed during a unified pull: clear error, nothing tagged, cleaned up", async () => {
    const root = `${dir.path}/killed-podman`;
    unifiedRoots.push(root);
    const repo = initRoot(root);
    const store = `${root}/sysroot/composefs/bootc/storage`;
    const child = spawnBootcfs(pullArgs(root, big, "--unified"));
    let service = 0;
    // podman sees the store as bootc's /run/bootc/storage; its socket is in the store's own run root.
    const runroot = unifiedStore(root).runroot;
    assert.ok(await waitFor(() => (service = pidsWith(runroot, "system", "service")[0] ?? 0) > 0, 60_000));
    // Once the layer is being fetched (the registry logs the GET), the service dies.
    const before = (await Deno.readTextFile(reg.logFile)).length;
    await waitFor(async () => (await Deno.readTextFile(reg.logFile)).slice(before).includes("/rig/big/blobs/"), 30_000);
    Deno.kill(service, "SIGKILL");
    const r = await child.output();
    const stderr = new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 1, stderr);
    assert.match(
      stderr,
      /error: pulling .*rig\/big:1 into .*: podman pull .*: the podman service (connection broke|ended the reply)/,
    );
    assert.deepEqual(tags(repo), []);
    assert.deepEqual(pidsWith(runroot), []);
    assert.ok(!(await Deno.readTextFile("/proc/self/mountinfo")).includes(store), "mounts left under the store");
  });

  await t.step("a corrupted blob in the registry: digest mismatch, nothing tagged", async () => {
    const manifest = JSON.parse(
      await run("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${images.bootable}`]),
    );
    const layer = manifest.layers.reduce((a: { size: number }, b: { size: number }) => a.size > b.size ? a : b);
    const hex = layer.digest.slice("sha256:".length);
    const data = `${reg.dataDir}/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
    const bytes = await Deno.readFile(data);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    await Deno.writeFile(data, bytes);
    const root = `${dir.path}/corrupt`;
    const repo = initRoot(root);
    const r = await bootcfs(pullArgs(root, images.bootable));
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`layer .*${layer.digest}.*digest mismatch|blob ${layer.digest}.*digest`));
    assert.deepEqual(tags(repo), []);
  });
});
