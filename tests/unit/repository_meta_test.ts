// meta.json layout and checks (composefs-formats.md §1.2, §7.4), names and tags (§1.1, oci-and-boot.md §2.2).
import assert from "node:assert/strict";
import {
  checkAccess,
  decodeTag,
  effectiveFormats,
  encodeTag,
  newMeta,
  objectIdFromLinkTarget,
  parseAlgorithm,
  parseMeta,
  relativeTarget,
  serializeMeta,
} from "../../lib/repository/mod.ts";
import { parseObjectLinkTarget, parseRefTarget } from "../../lib/repository/names.ts";

// The serde_json pretty output quoted in the spec (§1.2), for a sha256 V1 repository.
const SPEC_EXAMPLE = `{
  "version": 1,
  "algorithm": "fsverity-sha256-12",
  "features": {
    "compatible": [],
    "read-only-compatible": [
      "v1_erofs"
    ],
    "incompatible": []
  },
  "erofs_formats": {
    "default": 1
  }
}
`;

Deno.test("meta.json: byte layout of V1, V2 and dual-format repositories", () => {
  assert.equal(serializeMeta(newMeta("sha256", { default: 1, extra: [] })), SPEC_EXAMPLE);
  const v2 = serializeMeta(newMeta("sha512", { default: 2, extra: [] }));
  assert.equal(
    v2,
    SPEC_EXAMPLE.replace("sha256", "sha512").replace('[\n      "v1_erofs"\n    ]', "[]").replace(
      '"default": 1',
      '"default": 2',
    ),
  );
  const dual = serializeMeta(newMeta("sha512", { default: 1, extra: [2, 2, 1] }));
  assert.ok(dual.endsWith(`"erofs_formats": {\n    "default": 1,\n    "extra": [\n      2\n    ]\n  }\n}\n`));
  // V0 carries no feature flag.
  assert.deepEqual(newMeta("sha512", { default: 0, extra: [] }).readOnlyCompatible, []);
});

Deno.test("meta.json: parsing defaults, unknown fields and the effective format quirk", () => {
  const bare = parseMeta('{"version":1,"algorithm":"fsverity-sha512-12","erofs_version":7}');
  assert.deepEqual([bare.compatible, bare.readOnlyCompatible, bare.incompatible], [[], [], []]);
  assert.deepEqual(bare.erofsFormats, { default: 2, extra: [] });
  assert.deepEqual(effectiveFormats(bare), { default: 2, extra: [] });
  const flagged = parseMeta(
    '{"version":1,"algorithm":"fsverity-sha256-12","features":{"read-only-compatible":["v1_erofs"]},' +
      '"erofs_formats":{"default":2}}',
  );
  assert.deepEqual(effectiveFormats(flagged), { default: 1, extra: [] });
  assert.deepEqual(parseMeta(SPEC_EXAMPLE).erofsFormats, { default: 1, extra: [] });
  assert.throws(() => parseMeta("{"), /not valid JSON/);
  assert.throws(
    () => parseMeta('{"version":1,"algorithm":"fsverity-sha256-12","erofs_formats":{"default":3}}'),
    /0, 1 or 2/,
  );
});

Deno.test("algorithm strings accepted and rejected as upstream (§7.4)", () => {
  assert.equal(parseAlgorithm("fsverity-sha256-12"), "sha256");
  assert.equal(parseAlgorithm("fsverity-sha512-12"), "sha512");
  for (
    const bad of [
      "sha256-12",
      "garbage",
      "fsverity-sha256",
      "fsverity-sha1-12",
      "fsverity-sha256-abc",
      "fsverity-sha256-16",
    ]
  ) {
    assert.throws(() => parseAlgorithm(bad), Error, bad);
  }
});

Deno.test("access: newer version and unknown incompatible features refused, unknown ro-compat → read-only", () => {
  const m = (extra: string) => parseMeta(`{"version":1,"algorithm":"fsverity-sha512-12"${extra}}`);
  assert.deepEqual(checkAccess(m("")), { mode: "read-write" });
  assert.deepEqual(checkAccess(m(',"features":{"read-only-compatible":["v1_erofs"],"compatible":["shiny"]}')), {
    mode: "read-write",
  });
  assert.throws(() => checkAccess(parseMeta('{"version":2,"algorithm":"fsverity-sha512-12"}')), /version 2 is newer/);
  assert.throws(
    () => checkAccess(m(',"features":{"incompatible":["zstd_objects"]}')),
    /incompatible features.*zstd_objects/,
  );
  const ro = checkAccess(m(',"features":{"read-only-compatible":["v1_erofs","v3_erofs"]}'));
  assert.equal(ro.mode, "read-only");
  assert.match((ro as { reason: string }).reason, /v3_erofs/);
});

Deno.test("relative link targets as symlink_impl builds them (§1.1)", () => {
  const hex = "ab" + "cd".repeat(31);
  assert.equal(relativeTarget(`images/${hex}`, `objects/ab/${hex.slice(2)}`), `../objects/ab/${hex.slice(2)}`);
  assert.equal(relativeTarget("images/refs/foo", `images/${hex}`), `../${hex}`);
  assert.equal(relativeTarget("images/refs/some/name", `images/${hex}`), `../../${hex}`);
  assert.equal(relativeTarget("streams/refs/oci/x", "streams/oci-manifest-sha256:1"), "../../oci-manifest-sha256:1");
  assert.equal(parseRefTarget("oci/x", "../../oci-manifest-sha256:1"), "oci-manifest-sha256:1");
  assert.equal(parseRefTarget("oci/x", "../oci-manifest-sha256:1"), null);
  assert.equal(parseRefTarget("x", "../../etc"), null);
});

Deno.test("object link targets: any prefix parses, only ../objects/XX/… is followed", () => {
  const hex = "12" + "3f".repeat(31);
  const tail = `12/${hex.slice(2)}`;
  assert.equal(objectIdFromLinkTarget(`../this/is/ignored/${tail}`, "sha256"), hex);
  assert.equal(objectIdFromLinkTarget(tail, "sha256"), hex);
  assert.equal(objectIdFromLinkTarget(`../objects/${tail}`, "sha512"), null);
  assert.equal(parseObjectLinkTarget(`../objects/${tail}`, "sha256"), hex);
  for (const hostile of [`/objects/${tail}`, `../../objects/${tail}`, `../objects/../objects/${tail}`, `/etc/passwd`]) {
    assert.equal(parseObjectLinkTarget(hostile, "sha256"), null, hostile);
  }
});

Deno.test("tag names: %25 first, then %2F; decoding leaves other escapes", () => {
  assert.equal(encodeTag("localhost/bootc-sha256:ab"), "localhost%2Fbootc-sha256:ab");
  assert.equal(encodeTag("docker://quay.io/x:1"), "docker:%2F%2Fquay.io%2Fx:1");
  assert.equal(encodeTag("100%/x"), "100%25%2Fx");
  assert.equal(decodeTag("100%25%2Fx"), "100%/x");
  assert.equal(decodeTag("%252F"), "%2F");
  assert.equal(decodeTag("a%2fb%41"), "a%2fb%41");
  assert.throws(() => encodeTag("@sha256:00"), /reserved/);
});
