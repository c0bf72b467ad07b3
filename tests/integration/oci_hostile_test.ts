/**
 * Hostile input to `pull()` (oci-and-boot.md §3.7, §4): every case is refused with an error that
 * names the cause, and nothing is tagged (no manifest stream either).
 */
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { errorChain } from "../../lib/error/mod.ts";
import { pull, type PullOptions } from "../../lib/oci/pull.ts";
import { listTags } from "../../lib/oci/store.ts";
import { Repository } from "../../lib/repository/mod.ts";
import { buildTar } from "../../lib/tar/mod.ts";
import { zstdCompress } from "../../ffi/zstd.ts";
import { bootcfs } from "../helpers/cli.ts";
import { scratchDir } from "../helpers/fs.ts";
import { gen, sha256, writeOciLayout, writeRawOciLayout } from "../helpers/oci.ts";

const GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
const ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd";
const TAR = "application/vnd.oci.image.layer.v1.tar";

function goodTar(): Uint8Array {
  return buildTar([
    { entry: { path: "usr", kind: "dir" } },
    { entry: { path: "usr/f", kind: "file" }, data: gen(20_000, "f") },
  ]);
}

/** Pulls `ref` into a fresh repository and expects an error whose chain matches `cause`; nothing may be tagged. */
async function expectRefused(dir: string, ref: string, cause: RegExp, opts: PullOptions = {}): Promise<string> {
  const repo = Repository.init(`${dir}/repo-${crypto.randomUUID()}`, {
    alg: "sha512",
    formats: { default: 1, extra: [] },
    insecure: true,
  }).repo;
  try {
    let msg = "";
    await assert.rejects(() => pull(repo, ref, { tag: "hostile", ...opts }), (e: Error) => {
      msg = errorChain(e);
      return true;
    });
    assert.match(msg, cause);
    assert.deepEqual(listTags(repo), []);
    let manifests: string[] = [];
    try {
      manifests = [...Deno.readDirSync(`${repo.path}/streams`)].map((e) => e.name).filter((n) =>
        n.startsWith("oci-manifest-")
      );
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    assert.deepEqual(manifests, []);
    return msg;
  } finally {
    repo.close();
  }
}

Deno.test("hostile: layer blob digest mismatch (same size)", async () => {
  await using d = await scratchDir();
  const img = (await writeOciLayout(`${d.path}/l`, { layers: [{ tar: goodTar(), compression: "gzip" }], tag: "t" }))[0];
  const path = `${d.path}/l/blobs/sha256/${img.layers[0].digest.slice(7)}`;
  const b = await Deno.readFile(path);
  b[b.length - 10] ^= 0xff;
  await Deno.writeFile(path, b);
  const msg = await expectRefused(d.path, `oci:${d.path}/l:t`, /digest/);
  assert.match(msg, new RegExp(img.layers[0].digest.slice(7, 19)));
});

Deno.test("hostile: layer size differs from the descriptor", async () => {
  await using d = await scratchDir();
  const tar = goodTar();
  const blob = gzipSync(tar);
  await writeRawOciLayout(`${d.path}/l`, [{ blob, mediaType: GZIP, diffId: sha256(tar), size: blob.length - 1 }], {
    tag: "t",
  });
  await expectRefused(d.path, `oci:${d.path}/l:t`, /size|bytes/);
});

Deno.test("hostile: diff_id mismatch (config claims another uncompressed digest)", async () => {
  await using d = await scratchDir();
  const tar = goodTar();
  await writeRawOciLayout(`${d.path}/l`, [{ blob: gzipSync(tar), mediaType: GZIP, diffId: sha256(gen(10, "x")) }], {
    tag: "t",
  });
  await expectRefused(d.path, `oci:${d.path}/l:t`, /diff_id mismatch/);
});

Deno.test("hostile: truncated gzip and truncated zstd layers", async () => {
  await using d = await scratchDir();
  const tar = goodTar();
  const gz = gzipSync(tar);
  await writeRawOciLayout(`${d.path}/g`, [{
    blob: gz.subarray(0, gz.length - 30),
    mediaType: GZIP,
    diffId: sha256(tar),
  }], {
    tag: "t",
  });
  await expectRefused(d.path, `oci:${d.path}/g:t`, /gzip|truncat|unexpected end/i);
  const zs = zstdCompress(tar);
  await writeRawOciLayout(`${d.path}/z`, [{
    blob: zs.subarray(0, zs.length - 30),
    mediaType: ZSTD,
    diffId: sha256(tar),
  }], {
    tag: "t",
  });
  await expectRefused(d.path, `oci:${d.path}/z:t`, /zstd|truncat|unexpected end/i);
});

Deno.test("hostile: bad tar header checksum", async () => {
  await using d = await scratchDir();
  const tar = goodTar();
  tar[600] ^= 1; // inside the second header's name field
  await writeRawOciLayout(`${d.path}/l`, [{ blob: tar, mediaType: TAR, diffId: sha256(tar) }], { tag: "t" });
  await expectRefused(d.path, `oci:${d.path}/l:t`, /checksum/);
});

Deno.test("hostile: `..` and NUL in entry names", async () => {
  await using d = await scratchDir();
  const dotdot = buildTar([
    { entry: { path: "usr", kind: "dir" } },
    { entry: { path: "usr/x", kind: "file", pax: { path: "usr/../../etc/passwd" } }, data: gen(10, "p") },
  ]);
  await writeRawOciLayout(`${d.path}/a`, [{ blob: dotdot, mediaType: TAR, diffId: sha256(dotdot) }], { tag: "t" });
  await expectRefused(d.path, `oci:${d.path}/a:t`, /\.\./);
  const nul = buildTar([
    { entry: { path: "usr", kind: "dir" } },
    { entry: { path: "usr/x", kind: "file", pax: { path: "usr/a\0b" } }, data: gen(10, "p") },
  ]);
  await writeRawOciLayout(`${d.path}/n`, [{ blob: nul, mediaType: TAR, diffId: sha256(nul) }], { tag: "t" });
  await expectRefused(d.path, `oci:${d.path}/n:t`, /NUL|nul/);
});

Deno.test("hostile: decompression bomb over the configured limit", async () => {
  await using d = await scratchDir();
  const bomb = buildTar([
    { entry: { path: "usr", kind: "dir" } },
    { entry: { path: "usr/zero", kind: "file" }, data: new Uint8Array(48 << 20) },
  ]);
  await writeRawOciLayout(`${d.path}/l`, [{ blob: gzipSync(bomb), mediaType: GZIP, diffId: sha256(bomb) }], {
    tag: "t",
  });
  await expectRefused(d.path, `oci:${d.path}/l:t`, /decompression bomb/, { decompressLimits: { maxSize: 8 << 20 } });
  await expectRefused(d.path, `oci:${d.path}/l:t`, /decompression bomb/, {
    decompressLimits: { maxRatio: 50, ratioGrace: 1 << 20 },
  });
});

Deno.test("hostile: manifest names a blob that is missing", async () => {
  await using d = await scratchDir();
  const img = (await writeOciLayout(`${d.path}/l`, { layers: [{ tar: goodTar(), compression: "gzip" }], tag: "t" }))[0];
  await Deno.remove(`${d.path}/l/blobs/sha256/${img.layers[0].digest.slice(7)}`);
  const msg = await expectRefused(d.path, `oci:${d.path}/l:t`, /No such file|not found|missing/i);
  assert.match(msg, new RegExp(img.layers[0].digest.slice(7, 19)));
});

Deno.test("hostile: image index without a manifest for this platform", async () => {
  await using d = await scratchDir();
  await writeOciLayout(
    `${d.path}/l`,
    [{ layers: [{ tar: goodTar(), compression: "gzip" }], architecture: "s390x" }, {
      layers: [{ tar: goodTar(), compression: "gzip" }],
      architecture: "riscv64",
    }],
    { asIndex: { tag: "t" } },
  );
  await expectRefused(d.path, `oci:${d.path}/l:t`, /platform/i, { platform: { os: "linux", architecture: "amd64" } });
});

Deno.test("hostile: a repository from the future is refused by the CLI before anything is written", async () => {
  await using dir = await scratchDir();
  await writeOciLayout(`${dir.path}/layout`, { layers: [{ tar: goodTar(), compression: "gzip" }], tag: "v1" });
  const repo = `${dir.path}/repo`;
  Repository.init(repo, { alg: "sha512", formats: { default: 1, extra: [] }, insecure: true }).repo.close();
  const meta = JSON.parse(await Deno.readTextFile(`${repo}/meta.json`));
  const future = JSON.stringify({ ...meta, version: meta.version + 1 });
  await Deno.writeTextFile(`${repo}/meta.json`, future);
  const listing = async () => (await Array.fromAsync(Deno.readDir(repo))).map((e) => e.name).sort();
  const before = await listing();
  for (
    const args of [["oci", "pull", `oci:${dir.path}/layout:v1`, "--name", "x"], ["pull", `oci:${dir.path}/layout:v1`]]
  ) {
    const r = await bootcfs(["--repo", repo, "--insecure", ...args]);
    assert.equal(r.code, 1, r.stderr);
    const errors = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
    assert.equal(errors.length, 1, r.stderr);
    assert.match(errors[0], new RegExp(`version ${meta.version + 1} is newer`));
  }
  // Not upgraded, not written to: the format upgrade that precedes every pull must not touch it.
  assert.equal(await Deno.readTextFile(`${repo}/meta.json`), future);
  assert.deepEqual(await listing(), before);
});
