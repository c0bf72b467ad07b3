/**
 * `<id>.origin` (bootc-layout.md §2.1): bootc's byte layout when writing, the INI library's rules
 * when reading, and the image reference parsed back into status's `image` object.
 */
import assert from "node:assert/strict";
import {
  formatOrigin,
  type Origin,
  originReference,
  parseKeyfile,
  parseOrigin,
  parseOriginReference,
} from "../../lib/deploy/origin.ts";

const BOOT_DIGEST = "9e1f" + "0".repeat(60);
const MANIFEST = "sha256:4e11372e12e8761b33f316656d1ae97d1761b21fd120bdf8c885afbdb42697c1";

Deno.test("origin: written byte for byte as bootc writes it, and read back", () => {
  const o: Origin = {
    imageReference: "ostree-unverified-image:docker://quay.io/fedora/fedora-bootc:42",
    bootType: "bls",
    bootDigest: BOOT_DIGEST,
    manifestDigest: MANIFEST,
  };
  const text = formatOrigin(o);
  assert.equal(
    text,
    "[origin]\ncontainer-image-reference = ostree-unverified-image:docker://quay.io/fedora/fedora-bootc:42\n\n" +
      `[boot]\nboot_type = bls\ndigest = ${BOOT_DIGEST}\n\n[image]\nmanifest_digest = ${MANIFEST}`,
  );
  assert.ok(!text.endsWith("\n"), "no trailing newline");
  assert.deepEqual(parseOrigin(text), o);
});

Deno.test("origin: absent keys and empty sections are left out", () => {
  assert.equal(formatOrigin({ bootType: "uki" }), "[boot]\nboot_type = uki");
  const o: Origin = { imageReference: "ostree-unverified-image:oci:/srv/os:1", bootType: "uki" };
  assert.equal(
    formatOrigin(o),
    "[origin]\ncontainer-image-reference = ostree-unverified-image:oci:/srv/os:1\n\n[boot]\nboot_type = uki",
  );
  assert.deepEqual(parseOrigin(formatOrigin(o)), o);
  assert.equal(formatOrigin({}), "");
  assert.deepEqual(parseOrigin(""), {});
});

Deno.test("origin: values the reader would not give back are refused", () => {
  assert.throws(() => formatOrigin({ imageReference: "ostree-unverified-image:oci:/a;b" }), /cannot be stored/);
  assert.throws(() => formatOrigin({ bootDigest: "ab\ncd" }), /cannot be stored/);
  assert.throws(() => formatOrigin({ bootDigest: " ab" }), /cannot be stored/);
});

Deno.test("keyfile: ';' comments anywhere, trimming, repeated keys (last wins) and sections (merged)", () => {
  const kf = parseKeyfile(
    [
      "; a comment line",
      "  [boot]  ",
      "boot_type=uki ; trailing comment",
      "  digest   =  aa  ",
      "",
      "[image]",
      "manifest_digest = x",
      "[boot]",
      "digest = bb",
      "empty =",
      "url = a=b",
      "\r",
    ].join("\n"),
  );
  assert.deepEqual([...kf.keys()], ["boot", "image"]);
  assert.deepEqual([...kf.get("boot")!], [["boot_type", "uki"], ["digest", "bb"], ["empty", ""], ["url", "a=b"]]);
  assert.deepEqual([...kf.get("image")!], [["manifest_digest", "x"]]);
  // Keys before any section, and the upstream stripping of brackets.
  const top = parseKeyfile("k = v\n[[odd]]\na = 1\n");
  assert.deepEqual([...top.get("")!], [["k", "v"]]);
  assert.deepEqual([...top.get("odd")!], [["a", "1"]]);
});

Deno.test("keyfile: syntax errors name their line", () => {
  assert.throws(() => parseKeyfile("[boot]\n# a hash comment is not a comment\n"), /^Error: line 2: '# a hash/);
  assert.throws(() => parseKeyfile("[origin]\nk = v\n[boot\n"), /^Error: line 3: section header '\[boot'/);
  assert.throws(() => parseKeyfile("\n\n\n[boot]\n = bls\n"), /^Error: line 5: empty key/);
  assert.throws(() => parseKeyfile("[boot]\nboot_type bls\n"), /line 2: 'boot_type bls' is neither/);
  // ';' removes what would have been the '=' of a line.
  assert.throws(() => parseKeyfile("[boot]\nk ; = v\n"), /line 2:/);
});

Deno.test("origin: boot_type must be bls or uki; a missing one is left to the caller", () => {
  assert.throws(() => parseOrigin("[boot]\nboot_type = BLS\n"), /unknown \[boot\] boot_type 'BLS'/);
  assert.throws(() => parseOrigin("[boot]\nboot_type = efi"), /unknown/);
  assert.deepEqual(parseOrigin("[origin]\ncontainer-image-reference = x\n[other]\nk = v"), { imageReference: "x" });
  // Keys of other sections do not count.
  assert.deepEqual(parseOrigin("[image]\nboot_type = uki\ndigest = 1"), {});
});

Deno.test("originReference: ostree-unverified-image: in front of every transport; a bare name is refused", () => {
  for (
    const imgref of [
      "docker://quay.io/x:1",
      "oci:/srv/layout:tag",
      "oci-archive:/tmp/a.tar",
      "docker-archive:/tmp/d.tar:x",
      "containers-storage:localhost/x",
      "dir:/srv/dir",
      "docker-daemon:x:1",
    ]
  ) {
    assert.equal(originReference(imgref), `ostree-unverified-image:${imgref}`);
  }
  assert.throws(() => originReference("quay.io/x:1"), /has no transport/);
  assert.throws(() => originReference("oci:"), /has no transport/);
});

Deno.test("parseOriginReference: signature schemes and transports as bootc's status shows them", () => {
  const cases: [string, ReturnType<typeof parseOriginReference>][] = [
    ["ostree-unverified-image:docker://quay.io/x:1", { image: "quay.io/x:1", transport: "registry" }],
    ["ostree-unverified-image:registry:quay.io/x:1", { image: "quay.io/x:1", transport: "registry" }],
    ["ostree-unverified-registry:quay.io/x:1", { image: "quay.io/x:1", transport: "registry" }],
    ["ostree-unverified-image:oci:/srv/layout:tag", { image: "/srv/layout:tag", transport: "oci" }],
    ["ostree-unverified-image:oci-archive:/a.tar", { image: "/a.tar", transport: "oci-archive" }],
    ["ostree-unverified-image:docker-archive:/d.tar", { image: "/d.tar", transport: "docker-archive" }],
    [
      "ostree-unverified-image:containers-storage:[overlay@/s]localhost/x",
      { image: "[overlay@/s]localhost/x", transport: "containers-storage" },
    ],
    ["ostree-unverified-image:dir:/srv/d", { image: "/srv/d", transport: "dir" }],
    ["ostree-unverified-image:docker-daemon:x:1", { image: "x:1", transport: "docker-daemon" }],
    [
      "ostree-image-signed:docker://quay.io/x",
      { image: "quay.io/x", transport: "registry", signature: "containerPolicy" },
    ],
    [
      "ostree-remote-image:fedora:docker://quay.io/fedora/fedora-coreos:stable",
      { image: "quay.io/fedora/fedora-coreos:stable", transport: "registry", signature: { ostreeRemote: "fedora" } },
    ],
    [
      "ostree-remote-registry:fedora:quay.io/fedora/fedora-coreos:stable",
      { image: "quay.io/fedora/fedora-coreos:stable", transport: "registry", signature: { ostreeRemote: "fedora" } },
    ],
  ];
  for (const [ref, want] of cases) assert.deepEqual(parseOriginReference(ref), want, ref);
  // What originReference writes parses back to the same name.
  assert.deepEqual(parseOriginReference(originReference("oci:/srv/os:1")), { image: "/srv/os:1", transport: "oci" });
});

Deno.test("parseOriginReference: malformed references are errors", () => {
  assert.throws(() => parseOriginReference("quay.io/x"), /'quay.io\/x' has no signature scheme/);
  assert.throws(() => parseOriginReference("ostree-remote-image:docker"), /has no remote name/);
  assert.throws(() => parseOriginReference("docker://quay.io/x"), /unknown signature scheme 'docker'/);
  assert.throws(() => parseOriginReference("ostree-unverified-image:ftp:x"), /unknown transport 'ftp'/);
  assert.throws(() => parseOriginReference("ostree-unverified-image:docker:quay.io/x"), /without '\/\/'/);
  assert.throws(() => parseOriginReference("ostree-unverified-image:oci:"), /empty name/);
  assert.throws(
    () => parseOriginReference("ostree-unverified-image:quay.io/x"),
    /'ostree-unverified-image:quay.io\/x' has no transport/,
  );
});
