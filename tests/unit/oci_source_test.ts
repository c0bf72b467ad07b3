import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import {
  decompress,
  decompressLayer,
  DockerArchiveSource,
  loadImage,
  MediaType,
  openImageSource,
  parseManifest,
  parsePlatform,
} from "../../lib/oci/mod.ts";
import { buildTar } from "../../lib/tar/mod.ts";
import { zstdCompress } from "../../ffi/zstd.ts";
import { compress, gen, sha256, type TestCompression, writeOciLayout } from "../helpers/oci.ts";
import { run } from "../helpers/cli.ts";
import { collect } from "../../lib/bytes/mod.ts";

const te = new TextEncoder();

function layerTar(seed: string, n = 3): Uint8Array {
  return buildTar(Array.from({ length: n }, (_, i) => ({
    entry: { path: `${seed}/f${i}`, kind: "file" as const },
    data: gen(1000 * (i + 1), `${seed}${i}`),
  })));
}

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "bootcfs-oci-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const comps: TestCompression[] = ["gzip", "zstd", "none"];

/** `x` as a stream of fresh `n`-byte pieces. */
function chunks(x: Uint8Array, n = 7777): AsyncGenerator<Uint8Array> {
  return (async function* () {
    for (let o = 0; o < x.length; o += n) yield x.slice(o, o + n);
  })();
}

Deno.test("oci layout: gzip, zstd and uncompressed layers read, verified and decompressed", async () => {
  await withDir(async (dir) => {
    const tars = comps.map((c) => layerTar(c));
    const [w] = await writeOciLayout(`${dir}/l`, {
      layers: tars.map((tar, i) => ({ tar, compression: comps[i] })),
      tag: "v1",
    });
    for (const ref of [`oci:${dir}/l:v1`, `oci:${dir}/l`]) {
      const src = await openImageSource(ref);
      const img = await loadImage(src);
      assert.equal(img.manifest.digest, w.manifest.digest);
      assert.equal(img.manifest.digest, sha256(img.manifest.bytes));
      assert.equal(img.manifest.mediaType, MediaType.ociManifest);
      assert.deepEqual(img.configBytes, w.config.bytes);
      assert.deepEqual(img.layers.map((l) => l.diffId), tars.map(sha256));
      for (let i = 0; i < 3; i++) {
        const l = img.layers[i];
        assert.deepEqual(await collect(await src.getBlob(l.descriptor)), compress(tars[i], comps[i]));
        const tar = await collect(decompressLayer(await src.getBlob(l.descriptor), l.descriptor.mediaType));
        assert.deepEqual(tar, tars[i]);
        assert.equal(sha256(tar), l.diffId);
      }
      src.close();
    }
    await assert.rejects(
      openImageSource(`oci:${dir}/l:nope`).then((s) => s.getManifest()),
      /no image tagged "nope" \(tags: v1\)/,
    );
    await assert.rejects(openImageSource(`oci:${dir}`), /not an OCI layout/);
  });
});

Deno.test("oci layout: a corrupted blob fails with its digest; wrong sizes and missing blobs too", async () => {
  await withDir(async (dir) => {
    const [w] = await writeOciLayout(dir, { layers: [{ tar: layerTar("a"), compression: "none" }] });
    const layer = w.layers[0];
    const path = `${dir}/blobs/sha256/${layer.digest.slice(7)}`;
    const bytes = await Deno.readFile(path);
    bytes[bytes.length - 3000] ^= 0xff; // same size, different content
    await Deno.writeFile(path, bytes);
    const src = await openImageSource(`oci:${dir}`);
    await assert.rejects(collect(await src.getBlob(layer)), new RegExp(`blob ${layer.digest}: digest mismatch`));
    await assert.rejects(
      src.getBlob({ ...layer, size: layer.size + 1 }),
      new RegExp(`blob ${layer.digest}: size mismatch`),
    );
    await assert.rejects(src.getBlob({ digest: sha256(te.encode("x")), size: 1 }), /not found/);
    await assert.rejects(src.getBlob({ digest: "sha256:123", size: 1 }), /digest/);
  });
});

Deno.test("oci layout: platform selection from index.json and from a nested index", async () => {
  await withDir(async (dir) => {
    const images = [
      { layers: [{ tar: layerTar("amd"), compression: "gzip" as const }], architecture: "amd64" },
      { layers: [{ tar: layerTar("arm"), compression: "gzip" as const }], architecture: "arm64", variant: "v8" },
    ];
    const flat = await writeOciLayout(`${dir}/flat`, images);
    const nested = await writeOciLayout(`${dir}/nested`, images, { asIndex: { tag: "multi" } });
    for (const [layout, w, tag] of [[`${dir}/flat`, flat, ""], [`${dir}/nested`, nested, ":multi"]] as const) {
      const host = await openImageSource(`oci:${layout}${tag}`);
      if (Deno.build.arch === "x86_64") assert.equal((await host.getManifest()).digest, w[0].manifest.digest);
      const arm = await openImageSource(`oci:${layout}${tag}`, { platform: parsePlatform("linux/arm64") });
      assert.equal((await arm.getManifest()).digest, w[1].manifest.digest);
      const none = await openImageSource(`oci:${layout}${tag}`, { platform: parsePlatform("linux/riscv64") });
      await assert.rejects(
        none.getManifest(),
        /no image for platform linux\/riscv64 in the index \(available: linux\/amd64, linux\/arm64\/v8\)/,
      );
    }
  });
});

Deno.test("oci-archive: a layout packed by GNU tar is read member by member", async () => {
  await withDir(async (dir) => {
    const tar = layerTar("x");
    const [w] = await writeOciLayout(`${dir}/l`, { layers: [{ tar, compression: "zstd" }], tag: "localhost/t:1" });
    await run("tar", ["--format=posix", "-cf", `${dir}/a.tar`, "-C", `${dir}/l`, "."]);
    const src = await openImageSource(`oci-archive:${dir}/a.tar:localhost/t:1`);
    const img = await loadImage(src);
    assert.equal(img.manifest.digest, w.manifest.digest);
    assert.deepEqual(
      await collect(decompressLayer(await src.getBlob(img.layers[0].descriptor), img.layers[0].descriptor.mediaType)),
      tar,
    );
  });
});

Deno.test("docker-archive: manifest synthesised; layers are uncompressed blobs keyed by diff_id", async () => {
  await withDir(async (dir) => {
    const l1 = layerTar("one");
    const l2 = layerTar("two");
    const l2gz = new Uint8Array(gzipSync(l2));
    const config = te.encode(
      JSON.stringify({
        architecture: "amd64",
        os: "linux",
        rootfs: { type: "layers", diff_ids: [sha256(l1), sha256(l2)] },
      }),
    );
    const cfgName = `${sha256(config).slice(7)}.json`;
    const manifestJson = [{ Config: cfgName, RepoTags: ["localhost/d:1"], Layers: ["a/layer.tar", "b.tar.gz"] }];
    const archive = buildTar([
      { entry: { path: "manifest.json", kind: "file" }, data: te.encode(JSON.stringify(manifestJson)) },
      { entry: { path: cfgName, kind: "file" }, data: config },
      { entry: { path: "blobs/l1", kind: "file" }, data: l1 },
      { entry: { path: "a/layer.tar", kind: "symlink", linkTarget: "../blobs/l1" } },
      { entry: { path: "b.tar.gz", kind: "file" }, data: l2gz },
    ]);
    await Deno.writeFile(`${dir}/d.tar`, archive);
    for (
      const ref of [
        `docker-archive:${dir}/d.tar`,
        `docker-archive:${dir}/d.tar:localhost/d:1`,
        `docker-archive:${dir}/d.tar:@0`,
      ]
    ) {
      const src = await openImageSource(ref);
      const img = await loadImage(src);
      assert.equal(img.manifest.mediaType, MediaType.dockerManifest);
      assert.equal(img.manifest.digest, sha256(img.manifest.bytes));
      const m = parseManifest(img.manifest.bytes, MediaType.dockerManifest);
      assert.ok(m.kind === "manifest");
      assert.equal(m.config.digest, sha256(config));
      assert.deepEqual(m.layers.map((l) => [l.mediaType, l.digest, l.size]), [
        [MediaType.dockerLayerGzip, sha256(l1), l1.length],
        [MediaType.dockerLayerGzip, sha256(l2), l2.length],
      ]);
      assert.deepEqual(await collect(decompressLayer(await src.getBlob(m.layers[0]), m.layers[0].mediaType)), l1);
      assert.deepEqual(await collect(decompressLayer(await src.getBlob(m.layers[1]), m.layers[1].mediaType)), l2);
      // The blob itself is the uncompressed tar (containers/image semantics).
      assert.deepEqual(await collect(await src.getBlob(m.layers[1])), l2);
    }
    await assert.rejects(DockerArchiveSource.open(`${dir}/d.tar`, { index: 3 }), /no image @3/);
    await assert.rejects(
      openImageSource(`docker-archive:${dir}/d.tar:other`),
      /no image named docker.io\/library\/other:latest/,
    );
    // A layer whose content does not match its diff_id fails when streamed, naming the digest.
    const bad = archive.slice();
    const off = new TextDecoder("latin1").decode(bad).indexOf("one/f0") + 2048;
    bad[off] ^= 1;
    await Deno.writeFile(`${dir}/bad.tar`, bad);
    const src = await openImageSource(`docker-archive:${dir}/bad.tar`);
    const img = await loadImage(src);
    await assert.rejects(
      collect(await src.getBlob(img.layers[0].descriptor)),
      new RegExp(`${sha256(l1)}: digest mismatch`),
    );
  });
});

Deno.test("decompress: multi-member gzip, multi-frame zstd, truncation, unknown types", async () => {
  const a = gen(300000, "a");
  const b = gen(200000, "b");
  const both = new Uint8Array([...a, ...b]);
  const gz2 = new Uint8Array([...gzipSync(a), ...gzipSync(b)]);
  assert.deepEqual(await collect(decompress(chunks(gz2), "gzip")), both);
  // Members split anywhere across chunks, or ending exactly where a chunk ends.
  assert.deepEqual(await collect(decompress(chunks(gz2, 997), "gzip")), both);
  assert.deepEqual(await collect(decompress(chunks(gz2, gzipSync(a).length), "gzip")), both);
  // Zero padding after the last member is ignored, as node:zlib does; other bytes there are an
  // error (Go's gzip reader, and so podman, refuses both).
  const padded = new Uint8Array([...gz2, 0, 0, 0, 0x42]);
  assert.deepEqual(await collect(decompress(chunks(padded, 5000), "gzip")), both);
  assert.deepEqual(await collect(decompress(chunks(padded, gz2.length), "gzip")), both);
  const garbage = new Uint8Array([...gz2, 0x42, 0, 0]);
  await assert.rejects(collect(decompress(chunks(garbage, 5000), "gzip")), /not valid gzip data/);
  await assert.rejects(collect(decompress(chunks(new Uint8Array(0)), "gzip")), /truncated/);
  // A consumer that stops early must not leave zlib working on freed state.
  for await (const _ of decompress(chunks(gz2), "gzip")) break;
  const skippable = new Uint8Array([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
  const zs = new Uint8Array([...skippable, ...zstdCompress(a), ...zstdCompress(b), ...skippable]);
  assert.deepEqual(await collect(decompress(chunks(zs), "zstd")), both);
  await assert.rejects(collect(decompress(chunks(gz2.subarray(0, gz2.length - 100)), "gzip")), /truncated/);
  await assert.rejects(collect(decompress(chunks(zs.subarray(0, 5000)), "zstd")), /truncated/);
  await assert.rejects(collect(decompress(chunks(a), "gzip")), /not valid gzip/);
  await assert.rejects(
    collect(decompressLayer(chunks(a), "application/octet-stream")),
    /unsupported layer media type "application\/octet-stream"/,
  );
  // The data decides the compression, as in containers/image (docker-archive labels plain tars gzip).
  assert.deepEqual(await collect(decompressLayer(chunks(a), MediaType.dockerLayerGzip)), a);
  assert.deepEqual(await collect(decompressLayer(chunks(gz2), MediaType.ociLayer)), both);
  assert.deepEqual(await collect(decompressLayer(chunks(a), MediaType.ociLayer)), a);
});

Deno.test("decompress: output comes in full chunks (gzip 1 MiB, zstd 256 KiB), however small the input pieces", async () => {
  // A registry body arrives in 64 KiB pieces, and zstd decodes 128 KiB blocks; each stage after
  // decompression pays per chunk.
  const data = gen(3_500_000, "fill");
  for (const c of ["gzip", "zstd"] as const) {
    const packed = c === "gzip" ? new Uint8Array(gzipSync(data)) : zstdCompress(data);
    const size = c === "gzip" ? 1 << 20 : 256 << 10;
    const full = Math.floor(data.length / size);
    for (const piece of [65536, 4093, packed.length]) {
      for (const reuseBuffers of [false, true]) {
        const sizes: number[] = [];
        const parts: Uint8Array[] = [];
        for await (const x of decompress(chunks(packed, piece), c, {}, { reuseBuffers })) {
          sizes.push(x.length);
          parts.push(x.slice());
        }
        assert.deepEqual(sizes, [...Array(full).fill(size), data.length - full * size], `${c} in pieces of ${piece}`);
        assert.deepEqual(await collect(parts), data);
      }
    }
  }
});

Deno.test("decompress: the bomb guard stops on size and on ratio", async () => {
  const zeros = new Uint8Array(8 << 20);
  for (const c of ["gzip", "zstd"] as const) {
    const packed = c === "gzip" ? new Uint8Array(gzipSync(zeros)) : zstdCompress(zeros);
    const src = () =>
      (async function* () {
        yield packed;
      })();
    await assert.rejects(collect(decompress(src(), c, { maxSize: 1 << 20 })), /exceeds the limit of 1048576 bytes/);
    await assert.rejects(
      collect(decompress(src(), c, { maxRatio: 100, ratioGrace: 1 << 20 })),
      /compression ratio above 100:1/,
    );
    assert.equal((await collect(decompress(src(), c, { maxRatio: 1e6, maxSize: 8 << 20 }))).length, 8 << 20);
  }
  await assert.rejects(
    collect(decompress(
      (async function* () {
        yield zeros;
      })(),
      "none",
      { maxSize: 100 },
    )),
    /exceeds the limit/,
  );
});
