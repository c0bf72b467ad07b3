/**
 * The OCI image store (oci-and-boot.md §2, §5): config splitstream verity pinned upstream, named
 * refs, tags on disk (encoding, link targets read with Deno, not our code), opening images by tag
 * and digest with the sha256 check, listing.
 */
import assert from "node:assert/strict";
import { importLayer } from "../../lib/oci/layer_import.ts";
import {
  IMAGE_REF_V1,
  IMAGE_REF_V2,
  listImages,
  listTags,
  OciImage,
  tagImage,
  untagImage,
  writeConfigStream,
  writeManifestStream,
} from "../../lib/oci/store.ts";
import { type Digest, parseDigest } from "../../lib/oci/digest.ts";
import type { ObjectId, Repository } from "../../lib/repository/mod.ts";
import { rustTarLayer, sha256, tempRepository } from "../helpers/oci.ts";

const te = new TextEncoder();

async function* once(b: Uint8Array): AsyncGenerator<Uint8Array> {
  yield b;
}

/** The three upstream test layers imported, plus their config and a manifest naming them. */
async function fixture(repo: Repository) {
  const layers: [Digest, ObjectId][] = [];
  const descs = [];
  for (const [name, size] of [["alpha", 1000], ["beta", 2000], ["gamma", 3000]] as const) {
    const tar = rustTarLayer(name, size);
    const diffId = parseDigest(sha256(tar));
    layers.push([diffId, (await importLayer(repo, diffId, once(tar))).id]);
    descs.push({ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: diffId, size: tar.length });
  }
  const config = te.encode(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: layers.map(([d]) => d) },
    }),
  );
  const configDigest = parseDigest(sha256(config));
  const manifest = te.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length },
    layers: descs,
  }));
  return { layers, config, configDigest, manifest, manifestDigest: parseDigest(sha256(manifest)) };
}

Deno.test("store: the config splitstream of the upstream test image has the pinned verity", async () => {
  using tmp = tempRepository("sha256");
  const repo = tmp.repo;
  const f = await fixture(repo);
  const v = writeConfigStream(repo, f.config, f.layers);
  // composefs-rs test_config_verity_deterministic (composefs-formats.md §3.7).
  assert.equal(v, "4839518dea22749f8ff233e7f7baec65f23dd5336462f46ad6884769af84bf95");
  assert.equal(Deno.readLinkSync(`${repo.path}/streams/oci-config-${f.configDigest}`), `../objects/48/${v.slice(2)}`);
});

Deno.test("store: manifest + config open by tag and by digest; image refs by epoch", async () => {
  using tmp = tempRepository("sha512");
  const repo = tmp.repo;
  const f = await fixture(repo);
  const v2 = repo.ensureObject(te.encode("v2 image")).id;
  const v1 = repo.ensureObject(te.encode("v1 image")).id;
  const boot = repo.ensureObject(te.encode("boot image")).id;
  const cv = writeConfigStream(repo, f.config, f.layers, {
    v2,
    v1,
    boot: new Map([["composefs.image.boot.v1", boot]]),
  });
  const tag = "localhost/bootc-sha256:0123";
  const mv = writeManifestStream(repo, f.manifest, f.manifestDigest, f.configDigest, cv, f.layers, tag);

  // On disk exactly as composefs-rs names it (§2.2).
  assert.equal(
    Deno.readLinkSync(`${repo.path}/streams/refs/oci/localhost%2Fbootc-sha256:0123`),
    `../../oci-manifest-${f.manifestDigest}`,
  );
  const cs = repo.openStream(`oci-config-${f.configDigest}`);
  assert.deepEqual(
    [...cs.namedRefs.keys()].sort(),
    [...f.layers.map(([d]) => d), IMAGE_REF_V2, IMAGE_REF_V1, "composefs.image.boot.v1"].sort(),
  );
  const ms = repo.openStream(`oci-manifest-${f.manifestDigest}`);
  assert.equal(ms.namedRefs.get(`config:${f.configDigest}`), cv);
  assert.equal(ms.streamRefs[0], cv, "config ref first");

  const byTag = OciImage.openTag(repo, tag);
  const byDigest = OciImage.resolve(repo, `@${f.manifestDigest}`);
  for (const img of [byTag, byDigest]) {
    assert.equal(img.manifestVerity, mv);
    assert.equal(img.configVerity, cv);
    assert.deepEqual(img.layerRefs, f.layers);
    assert.deepEqual(img.configBytes, f.config);
    assert.equal(img.imageRef(2), v2);
    assert.equal(img.imageRef(1), v1);
    assert.equal(img.imageRef(0), v1, "V0 and V1 share the Epoch1 key");
    assert.equal(img.images.boot.get("composefs.image.boot.v1"), boot);
    assert.equal(img.isContainer, true);
  }
  assert.deepEqual(listTags(repo), [{ name: tag, digest: f.manifestDigest }]);
  const list = listImages(repo, 1);
  assert.equal(list.length, 1);
  assert.equal(list[0].imageId, v1);
  assert.equal(list[0].layerCount, 3);
});

Deno.test("store: a manifest stream whose bytes do not hash to its name is refused without a verity", async () => {
  using tmp = tempRepository();
  const repo = tmp.repo;
  const f = await fixture(repo);
  const cv = writeConfigStream(repo, f.config, f.layers);
  const fake = parseDigest(`sha256:${"cd".repeat(32)}`);
  writeManifestStream(repo, f.manifest, fake, f.configDigest, cv, f.layers, "fake");
  assert.throws(() => OciImage.open(repo, fake), /do not match/);
  assert.equal(listImages(repo, 1).length, 0, "listing skips what it cannot open");
});

Deno.test("store: tag, retag, untag; names starting with @ are refused", async () => {
  using tmp = tempRepository();
  const repo = tmp.repo;
  const f = await fixture(repo);
  const cv = writeConfigStream(repo, f.config, f.layers);
  writeManifestStream(repo, f.manifest, f.manifestDigest, f.configDigest, cv, f.layers);
  tagImage(repo, f.manifestDigest, "a/b%c");
  assert.equal(
    Deno.readLinkSync(`${repo.path}/streams/refs/oci/a%2Fb%25c`),
    `../../oci-manifest-${f.manifestDigest}`,
  );
  tagImage(repo, f.manifestDigest, "second");
  assert.deepEqual(listTags(repo).map((t) => t.name).sort(), ["a/b%c", "second"]);
  assert.throws(() => tagImage(repo, f.manifestDigest, "@x"), /reserved/);
  untagImage(repo, "a/b%c");
  assert.deepEqual(listTags(repo).map((t) => t.name), ["second"]);
  assert.throws(() => untagImage(repo, "a/b%c"), /no image tagged/);
  assert.throws(() => OciImage.openTag(repo, "missing"), /no image tagged/);
});
