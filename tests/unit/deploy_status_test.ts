/**
 * `bootcfs status` without I/O (bootc-layout.md §3.10): menus in the bootloader's order,
 * slotting and `rollbackQueued` (with the §10.1 divergence from bootc), image facts, and the
 * three output forms (canonical JSON, YAML, human text).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { blsFileName, formatBlsEntry } from "../../lib/boot/bls.ts";
import { formatUserCfg } from "../../lib/boot/grub_menu.ts";
import type { Origin } from "../../lib/deploy/origin.ts";
import { statusFormat } from "../../lib/commands/status.ts";
import { errorChain, UsageError } from "../../lib/error/mod.ts";
import {
  blsMenu,
  type BootEntry,
  bootEntry,
  bootloaderFromLoaderInfo,
  grubUkiMenu,
  type Host,
  type ImageInfo,
  legacyImageInfo,
  type MenuEntry,
  onlyBooted,
  parseStagedMarker,
  rfc3339Utc,
  slotHost,
  type SlotInput,
  uapiVersionCompare,
} from "../../lib/deploy/status.ts";
import { canonicalJson, formatHuman, toYaml } from "../../lib/deploy/status_output.ts";

const A = "a1".repeat(64), B = "b2".repeat(64), C = "c3".repeat(64), D = "d4".repeat(64);
const M = (c: string) => `sha256:${c.repeat(64)}`;

function type1(version: string, verity: string, sortKey?: string): string {
  return formatBlsEntry({
    title: `OS ${version}`,
    version,
    linux: `/boot/bootc_composefs-${verity}/vmlinuz`,
    initrd: [`/boot/bootc_composefs-${verity}/initrd`],
    options: `root=UUID=1 rw composefs=${verity}`,
    sortKey,
    extras: [],
  });
}

function uki(version: string, verity: string, sortKey: string): string {
  return formatBlsEntry({
    title: `OS ${version}`,
    version,
    initrd: [],
    efi: { key: "efi", path: `/EFI/Linux/bootc/bootc_composefs-${verity}.efi` },
    sortKey,
    extras: [],
  });
}

function origin(image: string, bootType: "bls" | "uki" = "bls"): Origin {
  return { imageReference: `ostree-unverified-image:${image}`, bootType, bootDigest: "9e".repeat(32) };
}

function info(digest: string, version?: string): ImageInfo {
  return { architecture: "amd64", created: "2026-06-29T12:00:31Z", version, digest, layers: [] };
}

function entry(verity: string, image = "docker://quay.io/example/os:latest", version = "42.0"): BootEntry {
  return bootEntry({
    verity,
    origin: origin(image),
    image: info(M(verity.slice(0, 1)), version),
    bootloader: "grub",
    missingVerityAllowed: false,
  });
}

function input(menu: MenuEntry[], booted: string | null, extra: Partial<SlotInput> = {}): SlotInput {
  const entries = new Map(menu.map((m) => [m.verity, entry(m.verity)]));
  return { menu, entries, booted, staged: null, usrOverlay: null, readOnly: false, ...extra };
}

const live = (verity: string): MenuEntry => ({ verity, staged: false });
const staged = (verity: string): MenuEntry => ({ verity, staged: true });

Deno.test("BLS menu: GRUB order is file names descending; the staged menu comes after", () => {
  const files = new Map([
    [blsFileName("fedora", "42", false), type1("42", A)],
    [blsFileName("fedora", "43", true), type1("43", B)],
  ]);
  const stagedFiles = new Map([[blsFileName("fedora", "44", true), type1("44", C)]]);
  assert.deepEqual(blsMenu(files, stagedFiles, "grub"), [live(B), live(A), staged(C)]);
  // Equal versions: the -1 (primary) file sorts before the -0 one.
  const same = new Map([["bootc_os-1-0.conf", type1("1", A)], ["bootc_os-1-1.conf", type1("1", B)]]);
  assert.deepEqual(blsMenu(same, new Map(), "grub"), [live(B), live(A)]);
});

Deno.test("BLS menu: systemd-boot order is sort-key, then the newer version", () => {
  const files = new Map([
    ["x.conf", uki("43", A, "bootc-os-1")],
    ["y.conf", uki("42", B, "bootc-os-0")],
  ]);
  assert.deepEqual(blsMenu(files, new Map(), "systemd"), [live(B), live(A)]);
  // Without sort keys: the newer version first (UAPI comparison: 1.10 is newer than 1.9).
  const bare = new Map([["a.conf", type1("1.9", A)], ["b.conf", type1("1.10", B)], ["c.conf", type1("1.10~rc1", C)]]);
  assert.deepEqual(blsMenu(bare, new Map(), "systemd"), [live(B), live(C), live(A)]);
  assert.deepEqual(blsMenu(bare, new Map(), "grub"), [live(C), live(B), live(A)]);
});

Deno.test("BLS menu: an entry that does not parse, or names no deployment, is an error naming its file", () => {
  const broken = new Map([["broken.conf", "title x\nlinux /boot/x/vmlinuz\n"]]);
  assert.throws(() => blsMenu(broken, new Map(), "grub"), /boot entry entries\/broken\.conf/);
  const noKarg = new Map([["n.conf", "version 1\nlinux /boot/x/vmlinuz\noptions rw\n"]]);
  assert.throws(() => blsMenu(new Map(), noKarg, "grub"), /boot entry entries\.staged\/n\.conf/);
  // UKI names are read strictly: the prefix is required (the migration adds it first).
  const legacyUki = new Map([["u.conf", `version 1\nefi /EFI/Linux/bootc/${A}.efi\n`]]);
  assert.throws(() => blsMenu(legacyUki, new Map(), "systemd"), (e) => {
    assert.match(errorChain(e), /^boot entry entries\/u\.conf: UKI path .* is not bootc_composefs-<id>\.efi$/);
    return true;
  });
});

Deno.test("GRUB user.cfg menu: file order, then user.cfg.staged", () => {
  const e = (v: string) => ({
    title: `OS: (${v})`,
    insmod: ["fat", "chain"],
    search: '--no-floppy --set=root --fs-uuid "${EFI_PART_UUID}"',
    chainloader: `/EFI/Linux/bootc/bootc_composefs-${v}.efi`,
    extras: [],
  });
  assert.deepEqual(
    grubUkiMenu(formatUserCfg([e(A), e(B)]), formatUserCfg([e(C), e(A)])),
    [live(A), live(B), staged(C), staged(A)],
  );
  assert.deepEqual(grubUkiMenu(formatUserCfg([e(B)]), null), [live(B)]);
  assert.throws(() => grubUkiMenu(formatUserCfg([{ ...e(A), chainloader: "/x.img" }]), null), /user\.cfg: menuentry/);
});

Deno.test("UAPI version comparison orders systemd's test list", () => {
  const versions = [
    "",
    "~1",
    "ab",
    "abb",
    "abc",
    "0001",
    "002",
    "12",
    "122",
    "122.9",
    "123~rc1",
    "123",
    "123-a",
    "123-a.1",
    "123-a1",
    "123-a1.1",
    "123-3",
    "123-3.1",
    "123^patch1",
    "123^1",
    "123.a-1",
    "123.1-1",
    "123a-1",
    "124",
  ];
  for (let i = 0; i < versions.length; i++) {
    for (let j = 0; j < versions.length; j++) {
      const want = i < j ? -1 : i > j ? 1 : 0;
      assert.equal(uapiVersionCompare(versions[i], versions[j]), want, `${versions[i]} vs ${versions[j]}`);
    }
  }
  assert.equal(uapiVersionCompare("1.0", "1.0~rc1"), 1);
  assert.equal(uapiVersionCompare("0123", "123"), 0);
});

Deno.test("bootloader from the LoaderInfo EFI variable", () => {
  const efivar = (s: string) => {
    const out = new Uint8Array(4 + s.length * 2 + 2);
    out.set([7, 0, 0, 0]);
    for (let i = 0; i < s.length; i++) out[4 + 2 * i] = s.charCodeAt(i);
    return out;
  };
  assert.equal(bootloaderFromLoaderInfo(efivar("systemd-boot 255.4")), "systemd");
  assert.equal(bootloaderFromLoaderInfo(efivar("Systemd-Boot 258")), "systemd");
  assert.equal(bootloaderFromLoaderInfo(efivar("GRUB CC 2.12")), "grub-cc");
  assert.equal(bootloaderFromLoaderInfo(efivar("GRUB 2.06")), "grub");
  assert.equal(bootloaderFromLoaderInfo(null), "grub");
});

Deno.test("staged marker and legacy .imginfo", () => {
  assert.deepEqual(parseStagedMarker(`{"depl_id":"${C}","finalization_locked":true}`), {
    deplId: C,
    finalizationLocked: true,
  });
  assert.throws(() => parseStagedMarker(`{"depl_id":"${C}"}`), /finalization_locked/);
  const manifest = {
    schemaVersion: 2,
    config: { digest: M("c"), size: 2 },
    layers: [{ digest: M("d"), size: 12345 }],
    annotations: { "org.opencontainers.image.version": "41.1" },
  };
  const text = JSON.stringify({ config: { architecture: "arm64", created: "2025-01-02T03:04:05Z" }, manifest });
  assert.deepEqual(legacyImageInfo(text), {
    architecture: "arm64",
    created: "2025-01-02T03:04:05Z",
    version: "41.1",
    // Hex, no "sha256:", of the manifest serialised again (bootc-layout.md §2.2, §10.2).
    digest: createHash("sha256").update(JSON.stringify(manifest)).digest("hex"),
    layers: [{ digest: M("d"), size: 12345 }],
  });
  assert.throws(() => legacyImageInfo(`{"config":{}}`), /'config' and 'manifest'/);
});

Deno.test("timestamps: UTC, as chrono writes them", () => {
  assert.equal(rfc3339Utc("2023-11-14T22:13:20.000Z"), "2023-11-14T22:13:20Z");
  assert.equal(rfc3339Utc("2026-06-29T12:00:31.5+02:00"), "2026-06-29T10:00:31.500Z");
  assert.equal(rfc3339Utc("2026-01-01T00:30:00-01:00"), "2026-01-01T01:30:00Z");
  assert.equal(rfc3339Utc("2026-06-29t12:00:31.123456z"), "2026-06-29T12:00:31.123456Z");
  assert.equal(rfc3339Utc("2026-06-29T12:00:31.123456789123Z"), "2026-06-29T12:00:31.123456789Z");
  assert.equal(rfc3339Utc("0050-01-01T00:00:00Z"), "0050-01-01T00:00:00Z");
  assert.equal(rfc3339Utc("2023-02-30T00:00:00Z"), null);
  assert.equal(rfc3339Utc("yesterday"), null);
  assert.equal(rfc3339Utc("2023-11-14"), null);
});

Deno.test("boot entry: image facts, boot type, and a required boot_type", () => {
  const e = bootEntry({
    verity: A,
    origin: { ...origin("oci:/srv/os:1", "uki"), bootDigest: undefined },
    image: { architecture: "arm64", created: "bad", digest: M("1"), layers: [] },
    bootloader: "systemd",
    missingVerityAllowed: true,
  });
  assert.deepEqual(e.image, {
    image: { image: "/srv/os:1", transport: "oci" },
    version: null,
    timestamp: null,
    imageDigest: M("1"),
    architecture: "arm64",
  });
  assert.deepEqual(e.composefs, {
    verity: A,
    bootType: "Uki",
    bootDigest: null,
    bootloader: "systemd",
    missingVerityAllowed: true,
  });
  const noImage = bootEntry({
    verity: A,
    origin: { bootType: "bls" },
    image: null,
    bootloader: "grub",
    missingVerityAllowed: false,
  });
  assert.equal(noImage.image, null);
  assert.throws(
    () => bootEntry({ verity: A, origin: {}, image: null, bootloader: "grub", missingVerityAllowed: false }),
    /no \[boot\] boot_type/,
  );
});

Deno.test("slotting: booted first in the menu, the next one is the rollback", () => {
  const host = slotHost(input([live(A), live(B)], A));
  assert.equal(host.status.booted?.composefs.verity, A);
  assert.equal(host.status.rollback?.composefs.verity, B);
  assert.equal(host.status.staged, null);
  assert.equal(host.status.otherDeployments, undefined);
  assert.equal(host.status.rollbackQueued, false);
  assert.deepEqual(host.spec, {
    image: { image: "quay.io/example/os:latest", transport: "registry" },
    bootOrder: "default",
  });
});

Deno.test("slotting: after a rollback the menu starts with the other deployment: rollback queued", () => {
  const host = slotHost(input([live(B), live(A)], A));
  assert.equal(host.status.rollback?.composefs.verity, B);
  assert.equal(host.status.rollbackQueued, true);
  assert.equal(host.spec.bootOrder, "rollback");
});

Deno.test("slotting: the staged deployment by the marker; the booted one's staged copy is not counted twice", () => {
  const menu = [live(A), live(B), staged(C), staged(A)];
  const host = slotHost(input(menu, A, { staged: { deplId: C, finalizationLocked: true } }));
  assert.equal(host.status.staged?.composefs.verity, C);
  assert.equal(host.status.staged?.downloadOnly, true);
  assert.equal(host.status.booted?.composefs.verity, A);
  assert.equal(host.status.booted?.downloadOnly, false);
  assert.equal(host.status.rollback?.composefs.verity, B);
  assert.equal(host.status.otherDeployments, undefined);
  assert.equal(host.status.rollbackQueued, false);
  assert.equal(host.spec.image?.image, "quay.io/example/os:latest");
  // Without the marker (it lives in /run) the staged menu's new entry is left out.
  const after = slotHost(input(menu, A));
  assert.equal(after.status.staged, null);
  assert.equal(after.status.rollback?.composefs.verity, B);
});

Deno.test("slotting: more deployments in the menu than booted and rollback become others, in menu order", () => {
  const host = slotHost(input([live(A), live(D), live(B), live(C)], A));
  assert.equal(host.status.rollback?.composefs.verity, D);
  assert.deepEqual(host.status.otherDeployments?.map((e) => e.composefs.verity), [B, C]);
});

Deno.test("slotting: a root that is not booted has every live entry among the others and nothing queued", () => {
  const host = slotHost(input([live(B), live(A), staged(C)], null));
  assert.equal(host.status.booted, null);
  assert.equal(host.status.rollback, null);
  assert.equal(host.status.staged, null);
  assert.equal(host.status.rollbackQueued, false);
  assert.deepEqual(host.status.otherDeployments?.map((e) => e.composefs.verity), [B, A]);
  assert.deepEqual(host.spec, { image: null, bootOrder: "default" });
});

Deno.test("slotting: entries without an origin are skipped, but still decide the menu's first place", () => {
  const i = input([live(D), live(A), live(B)], A);
  const entries = new Map(i.entries);
  entries.delete(D);
  const host = slotHost({ ...i, entries });
  assert.equal(host.status.rollback?.composefs.verity, B);
  assert.equal(host.status.rollbackQueued, true);
});

Deno.test("slotting: mixed boot types, or a booted deployment missing from the menu, are errors", () => {
  const i = input([live(A), live(B)], A);
  const entries = new Map(i.entries);
  const uki = bootEntry({
    verity: B,
    origin: origin("docker://x", "uki"),
    image: info(M("b")),
    bootloader: "grub",
    missingVerityAllowed: false,
  });
  entries.set(B, uki);
  assert.throws(() => slotHost({ ...i, entries }), /conflicting boot types/);
  assert.throws(() => slotHost(input([live(B)], A)), /booted deployment a1a1.* is not in the boot menu/);
});

Deno.test("rollbackQueued means 'the first menu entry is not the booted one' (bootc-layout.md §10.1)", () => {
  // GRUB + BLS right after an upgrade and reboot: bootc sorts GRUB's entries the wrong way round
  // and reports a queued rollback here; the menu's first entry is the booted one, so nothing is queued.
  const grub = blsMenu(
    new Map([[blsFileName("os", "43", true), type1("43", B)], [blsFileName("os", "42", false), type1("42", A)]]),
    new Map(),
    "grub",
  );
  assert.equal(slotHost(input(grub, B)).status.rollbackQueued, false);
  assert.equal(slotHost(input(grub, A)).status.rollbackQueued, true);
  // systemd-boot + UKI in the same state: bootc's test is not negated and also says "queued".
  const sd = blsMenu(
    new Map([["1.conf", uki("43", B, "bootc-os-0")], ["0.conf", uki("42", A, "bootc-os-1")]]),
    new Map(),
    "systemd",
  );
  const e = (v: string) =>
    bootEntry({
      verity: v,
      origin: origin("docker://x", "uki"),
      image: info(M("0")),
      bootloader: "systemd",
      missingVerityAllowed: false,
    });
  const ukiInput = (booted: string): SlotInput => ({
    ...input(sd, booted),
    entries: new Map([[A, e(A)], [B, e(B)]]),
  });
  assert.equal(slotHost(ukiInput(B)).status.rollbackQueued, false);
  assert.equal(slotHost(ukiInput(A)).status.rollbackQueued, true);
});

Deno.test("--booted keeps the booted slot alone (bootc keeps the other deployments; bootcfs drops them too)", () => {
  const host = onlyBooted(
    slotHost(input([live(A), live(B), live(C), staged(D)], A, { staged: { deplId: D, finalizationLocked: false } })),
  );
  assert.equal(host.status.booted?.composefs.verity, A);
  assert.equal(host.status.staged, null);
  assert.equal(host.status.rollback, null);
  assert.equal("otherDeployments" in host.status, false);
});

Deno.test("canonical JSON: sorted keys (UTF-16 order), no whitespace, ECMAScript numbers", () => {
  assert.equal(
    canonicalJson({ b: [1, "x", { z: null, y: true }], a: null, B: 1e21, "é": -0, aa: 0.5, skip: undefined }),
    '{"B":1e+21,"a":null,"aa":0.5,"b":[1,"x",{"y":true,"z":null}],"é":0}',
  );
  assert.equal(canonicalJson('a\u0001"\\'), '"a\\u0001\\"\\\\"');
  assert.throws(() => canonicalJson({ x: NaN }), /no JSON form/);
});

/** The host of bootc-layout.md §3.10's example. */
function exampleHost(): Host {
  const booted = bootEntry({
    verity: A,
    origin: { ...origin("docker://quay.io/example/os:latest"), bootDigest: "ab".repeat(32) },
    image: info(M("4"), "42.20260629.0"),
    bootloader: "grub",
    missingVerityAllowed: false,
  });
  return slotHost({
    menu: [live(A)],
    entries: new Map([[A, booted]]),
    booted: A,
    staged: null,
    usrOverlay: null,
    readOnly: false,
  });
}

Deno.test("status JSON: the envelope and key order of bootc's example", () => {
  assert.equal(
    canonicalJson(exampleHost()),
    '{"apiVersion":"org.containers.bootc/v1","kind":"BootcHost","metadata":{"name":"host"},' +
      '"spec":{"bootOrder":"default","image":{"image":"quay.io/example/os:latest","transport":"registry"}},' +
      '"status":{"booted":{"cachedUpdate":null,' +
      `"composefs":{"bootDigest":"${
        "ab".repeat(32)
      }","bootType":"Bls","bootloader":"grub","missingVerityAllowed":false,"verity":"${A}"},` +
      '"downloadOnly":false,"image":{"architecture":"amd64","image":{"image":"quay.io/example/os:latest","transport":"registry"},' +
      `"imageDigest":"${M("4")}","timestamp":"2026-06-29T12:00:31Z","version":"42.20260629.0"},` +
      '"incompatible":false,"ostree":null,"pinned":false,"softRebootCapable":false,"store":null},' +
      '"readOnly":false,"rollback":null,"rollbackQueued":false,"staged":null,"type":null,"usrOverlay":null}}',
  );
});

Deno.test("status YAML: serde_yaml's layout, strings quoted only where YAML would misread them", () => {
  assert.equal(
    toYaml(exampleHost()),
    [
      "apiVersion: org.containers.bootc/v1",
      "kind: BootcHost",
      "metadata:",
      "  name: host",
      "spec:",
      "  image:",
      "    image: quay.io/example/os:latest",
      "    transport: registry",
      "  bootOrder: default",
      "status:",
      "  staged: null",
      "  booted:",
      "    image:",
      "      image:",
      "        image: quay.io/example/os:latest",
      "        transport: registry",
      "      version: 42.20260629.0",
      '      timestamp: "2026-06-29T12:00:31Z"',
      `      imageDigest: ${M("4")}`,
      "      architecture: amd64",
      "    cachedUpdate: null",
      "    incompatible: false",
      "    pinned: false",
      "    softRebootCapable: false",
      "    downloadOnly: false",
      "    store: null",
      "    ostree: null",
      "    composefs:",
      `      verity: ${A}`,
      "      bootType: Bls",
      "      bootloader: grub",
      `      bootDigest: ${"ab".repeat(32)}`,
      "      missingVerityAllowed: false",
      "  rollback: null",
      "  rollbackQueued: false",
      "  type: null",
      "  usrOverlay: null",
      "  readOnly: false",
      "",
    ].join("\n"),
  );
  assert.equal(
    toYaml({
      list: [{ a: "yes", b: [] }, "1.0", ["", "x"]],
      o: {},
      n: 3,
      s: ["a: b", "-x", "#c", "1e5", "0x1f", "~", "ok: "],
    }),
    [
      "list:",
      '- a: "yes"',
      "  b: []",
      '- "1.0"',
      "-",
      '  - ""',
      "  - x",
      "o: {}",
      '"n": 3', // YAML 1.1 reads a bare n as false
      "s:",
      '- "a: b"',
      '- "-x"',
      '- "#c"',
      '- "1e5"',
      '- "0x1f"',
      '- "~"',
      '- "ok: "',
      "",
    ].join("\n"),
  );
  assert.equal(toYaml({ digits: "0123", hex: "3f2a", line: "a\nb" }), 'digits: "0123"\nhex: 3f2a\nline: "a\\nb"\n');
});

Deno.test("human output: bootc's slot blocks, rows aligned under the label", () => {
  const host = slotHost(
    input([live(A), live(B)], A, { usrOverlay: { accessMode: "readOnly", persistence: "transient" } }),
  );
  host.status.rollback!.image!.version = null;
  assert.equal(
    formatHuman(host, { verbose: false, root: "/" }),
    [
      "● Booted image: quay.io/example/os:latest",
      `        Digest: ${M("a")} (amd64)`,
      `        Verity: ${A}`,
      "       Version: 42.0 (2026-06-29T12:00:31Z)",
      "  /usr overlay: transient, read-only",
      "",
      "  Rollback image: quay.io/example/os:latest",
      `          Digest: ${M("b")} (amd64)`,
      `          Verity: ${B}`,
      "       Timestamp: 2026-06-29T12:00:31Z",
      "",
    ].join("\n"),
  );
});

Deno.test("human output: staged with -v; a target that is not booted lists its deployments as others", () => {
  const menu = [live(A), staged(C)];
  const i = input(menu, A, { staged: { deplId: C, finalizationLocked: false } });
  const entries = new Map(i.entries);
  entries.set(C, entry(C, "oci:/srv/layout:v2", "43.0"));
  const verbose = formatHuman(slotHost({ ...i, entries }), { verbose: true, root: "/" });
  assert.match(verbose, /^ {2}Staged image: oci:\/srv\/layout:v2\n {8}Digest: sha256:c{64} \(amd64\)\n/);
  assert.match(verbose, /\n {6}FsVerity: Enforced\n {1}Download-only: no\n\n● Booted image/);
  assert.match(verbose, /\n {3}Soft-reboot: no\n/);

  const other = input([live(B), live(A)], null);
  const noImage = bootEntry({
    verity: A,
    origin: { bootType: "bls" },
    image: null,
    bootloader: "grub",
    missingVerityAllowed: false,
  });
  const text = formatHuman(slotHost({ ...other, entries: new Map([...other.entries, [A, noImage]]) }), {
    verbose: false,
    root: "/mnt/target",
  });
  assert.equal(
    text,
    [
      "No deployment of /mnt/target is booted.",
      "",
      "   Other image: quay.io/example/os:latest",
      `        Digest: ${M("b")} (amd64)`,
      `        Verity: ${B}`,
      "       Version: 42.0 (2026-06-29T12:00:31Z)",
      "",
      "   Other composefs",
      `            Commit: ${A}`,
      "",
    ].join("\n"),
  );
});

Deno.test("status --format: human on a terminal, else YAML, as bootc; --json; conflicts are usage errors", () => {
  assert.equal(statusFormat({}, true), "humanreadable");
  assert.equal(statusFormat({}, false), "yaml");
  assert.equal(statusFormat({ json: true }, true), "json");
  assert.equal(statusFormat({ format: "yaml" }, true), "yaml");
  assert.equal(statusFormat({ format: "json", json: true, "format-version": "1" }, false), "json");
  assert.equal(statusFormat({ "format-version": "0" }, false), "yaml");
  assert.throws(() => statusFormat({ format: "toml" }, false), UsageError);
  assert.throws(() => statusFormat({ format: "yaml", json: true }, false), /exclude each other/);
  assert.throws(() => statusFormat({ "format-version": "2" }, false), /unsupported --format-version '2'/);
});
