/**
 * `bootcfs status` on a root built by hand the way bootc lays one out (bootc-layout.md §1.1,
 * §3.10): a repository with two pulled images, their deployments' origins, GRUB's BLS entries
 * (primary -1, secondary -0), then a menu entry without origin, a legacy `.imginfo` deployment
 * and an unparsable entry. The root is not the running system, so every deployment is listed
 * among the others, in menu order.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { blsFileName, formatBlsEntry } from "../../lib/boot/bls.ts";
import { formatOrigin, originReference } from "../../lib/deploy/origin.ts";
import { buildTar } from "../../lib/tar/mod.ts";
import { bootcfs } from "../helpers/cli.ts";
import { requireRoot, scratchDir } from "../helpers/fs.ts";
import { bootcfsUnderJournal, fakeJournal } from "../helpers/journal.ts";
import { sha256 } from "../helpers/oci.ts";

const te = new TextEncoder();
const OS_ID = "bootcfs-test";

interface ImageSpec {
  tag: string;
  version: string;
  created: string;
}

/** Writes an OCI layout holding one small image per spec, each manifest annotated with its version. */
async function writeLayout(dir: string, specs: ImageSpec[]): Promise<void> {
  await Deno.mkdir(`${dir}/blobs/sha256`, { recursive: true });
  const blob = async (mediaType: string, bytes: Uint8Array) => {
    const digest = sha256(bytes);
    await Deno.writeFile(`${dir}/blobs/sha256/${digest.slice(7)}`, bytes);
    return { mediaType, digest, size: bytes.length };
  };
  const manifests = [];
  for (const s of specs) {
    const tar = buildTar([
      { entry: { path: "usr/", kind: "dir", mtime: 1700000000 } },
      { entry: { path: "usr/lib/", kind: "dir", mtime: 1700000000 } },
      {
        entry: { path: "usr/lib/os-release", kind: "file", mtime: 1700000000 },
        data: te.encode(`ID=${OS_ID}\nVERSION_ID=${s.version}\n`),
      },
    ]);
    const layer = await blob("application/vnd.oci.image.layer.v1.tar", tar);
    const config = await blob(
      "application/vnd.oci.image.config.v1+json",
      te.encode(JSON.stringify({
        created: s.created,
        architecture: "amd64",
        os: "linux",
        rootfs: { type: "layers", diff_ids: [sha256(tar)] },
      })),
    );
    const mediaType = "application/vnd.oci.image.manifest.v1+json";
    const manifest = await blob(
      mediaType,
      te.encode(JSON.stringify({
        schemaVersion: 2,
        mediaType,
        config,
        layers: [layer],
        annotations: { "org.opencontainers.image.version": s.version },
      })),
    );
    manifests.push({ ...manifest, annotations: { "org.opencontainers.image.ref.name": s.tag } });
  }
  await Deno.writeTextFile(`${dir}/oci-layout`, JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await Deno.writeTextFile(`${dir}/index.json`, JSON.stringify({ schemaVersion: 2, manifests }));
}

async function write(path: string, text: string): Promise<void> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(path, text);
}

/** A GRUB BLS entry for deployment `id`, as bootc writes it. */
function entryText(id: string, version: string, sortKey: string): string {
  return formatBlsEntry({
    title: `bootcfs test ${version}`,
    version,
    linux: `/boot/bootc_composefs-${id}/vmlinuz`,
    initrd: [`/boot/bootc_composefs-${id}/initrd`],
    options: `rw composefs=?${id}`,
    sortKey,
    extras: [],
  });
}

/** Every file under `dir` with its content, to show that status wrote nothing. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string, rel: string) => {
    for await (const e of Deno.readDir(d)) {
      if (e.isDirectory) await walk(`${d}/${e.name}`, `${rel}${e.name}/`);
      else out[`${rel}${e.name}`] = e.isFile ? await Deno.readTextFile(`${d}/${e.name}`) : "";
    }
  };
  await walk(dir, "");
  return out;
}

/** `value` with object keys sorted, serialised compactly: the canonical form, computed independently. */
function sortedJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v) =>
      v && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]]))
        : v,
  );
}

interface PullJson {
  manifestDigest: string;
  imageId: string;
}

// deno-lint-ignore no-explicit-any
type Json = any;

Deno.test("status of a root that is not booted: JSON, YAML and human forms; warnings; legacy .imginfo; errors", async (t) => {
  requireRoot();
  await using dir = await scratchDir("bootcfs-status-");
  const root = `${dir.path}/root`;
  const layout = `${dir.path}/layout`;
  const sysroot = `${root}/sysroot`;
  await Deno.mkdir(sysroot, { recursive: true });
  await writeLayout(layout, [
    { tag: "v1", version: "1.0", created: "2026-01-02T03:04:05.000Z" },
    { tag: "v2", version: "2.0", created: "2026-02-03T04:05:06.250+01:00" },
  ]);
  const init = await bootcfs(["--root", root, "--insecure", "repo", "init"]);
  assert.equal(init.code, 0, init.stderr);
  const pulled: PullJson[] = [];
  for (const tag of ["v1", "v2"]) {
    const r = await bootcfs([
      "--root",
      root,
      "--insecure",
      "--progress",
      "none",
      "pull",
      `oci:${layout}:${tag}`,
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    pulled.push(JSON.parse(r.stdout));
  }
  const [v1, v2] = pulled;
  assert.notEqual(v1.imageId, v2.imageId);
  const bootDigest = (tag: string) => createHash("sha256").update(`kernel+initrd ${tag}`).digest("hex");
  for (const [p, tag] of [[v1, "v1"], [v2, "v2"]] as const) {
    await write(
      `${sysroot}/state/deploy/${p.imageId}/${p.imageId}.origin`,
      formatOrigin({
        imageReference: originReference(`oci:${layout}:${tag}`),
        bootType: "bls",
        bootDigest: bootDigest(tag),
        manifestDigest: p.manifestDigest,
      }),
    );
  }
  const entries = `${sysroot}/boot/loader/entries`;
  // v2 is the primary entry, v1 the secondary, as after an upgrade from v1 to v2.
  await write(`${entries}/${blsFileName(OS_ID, "1.0", false)}`, entryText(v1.imageId, "1.0", `bootc-${OS_ID}-1`));
  await write(`${entries}/${blsFileName(OS_ID, "2.0", true)}`, entryText(v2.imageId, "2.0", `bootc-${OS_ID}-0`));
  const status = (...args: string[]) => bootcfs(["--root", root, "status", ...args]);

  const imageOf = (p: PullJson, tag: string, version: string, timestamp: string) => ({
    architecture: "amd64",
    image: { image: `${layout}:${tag}`, transport: "oci" },
    imageDigest: p.manifestDigest,
    timestamp,
    version,
  });
  const composefsOf = (p: PullJson, tag: string) => ({
    bootDigest: bootDigest(tag),
    bootType: "Bls",
    bootloader: "grub",
    // The repository was created with --insecure.
    missingVerityAllowed: true,
    verity: p.imageId,
  });

  let json: Json;
  await t.step("--json: canonical JSON with every deployment among the others, in menu order", async () => {
    const before = await snapshot(sysroot);
    const r = await status("--json");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    json = JSON.parse(r.stdout);
    assert.equal(r.stdout, sortedJson(json) + "\n");
    assert.equal(json.apiVersion, "org.containers.bootc/v1");
    assert.equal(json.kind, "BootcHost");
    assert.deepEqual(json.metadata, { name: "host" });
    assert.deepEqual(json.spec, { bootOrder: "default", image: null });
    const s = json.status;
    assert.equal(s.booted, null);
    assert.equal(s.staged, null);
    assert.equal(s.rollback, null);
    assert.equal(s.rollbackQueued, false);
    assert.equal(s.type, null);
    assert.equal(s.usrOverlay, null);
    assert.equal(s.readOnly, false);
    assert.equal(s.otherDeployments.length, 2);
    const [first, second] = s.otherDeployments;
    assert.deepEqual(first.image, imageOf(v2, "v2", "2.0", "2026-02-03T03:05:06.250Z"));
    assert.deepEqual(first.composefs, composefsOf(v2, "v2"));
    assert.deepEqual(second.image, imageOf(v1, "v1", "1.0", "2026-01-02T03:04:05Z"));
    assert.deepEqual(second.composefs, composefsOf(v1, "v1"));
    for (const e of s.otherDeployments) {
      assert.equal(e.downloadOnly, false);
      assert.equal(e.pinned, false);
      assert.equal(e.cachedUpdate, null);
    }
    // Status wrote nothing.
    assert.deepEqual(await snapshot(sysroot), before);
  });

  await t.step("--format yaml (and the default off a terminal): the same document", async () => {
    const r = await status("--format", "yaml");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^apiVersion: org\.containers\.bootc\/v1\nkind: BootcHost\n/);
    const viaPython = await new Deno.Command("python3", {
      args: ["-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = viaPython.stdin.getWriter();
    await w.write(te.encode(r.stdout));
    await w.close();
    const out = await viaPython.output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), json);
    const dflt = await status();
    assert.equal(dflt.stdout, r.stdout);
  });

  await t.step("human form: says nothing is booted, then one block per deployment", async () => {
    const r = await status("--format", "humanreadable");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      [
        `No deployment of ${root} is booted.`,
        "",
        `   Other image: oci:${layout}:v2`,
        `        Digest: ${v2.manifestDigest} (amd64)`,
        `        Verity: ${v2.imageId}`,
        "       Version: 2.0 (2026-02-03T03:05:06Z)",
        "",
        `   Other image: oci:${layout}:v1`,
        `        Digest: ${v1.manifestDigest} (amd64)`,
        `        Verity: ${v1.imageId}`,
        "       Version: 1.0 (2026-01-02T03:04:05Z)",
        "",
      ].join("\n"),
    );
    const verbose = await status("--format", "humanreadable", "-v");
    assert.match(verbose.stdout, /\n {6}FsVerity: Not Enforced\n/);
    const booted = await status("--booted", "--json");
    const b = JSON.parse(booted.stdout);
    assert.equal(b.status.booted, null);
    assert.equal("otherDeployments" in b.status, false);
  });

  const missing = "e5".repeat(64);
  await t.step("a menu entry without origin: a warning with bootc's journal fields, and skipped", async () => {
    await write(`${entries}/${blsFileName(OS_ID, "0.9", false)}`, entryText(missing, "0.9", `bootc-${OS_ID}-2`));
    const r = await status("--json");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, `warning: No origin file for deployment ${missing}\n`);
    assert.deepEqual(JSON.parse(r.stdout), json);
    const journal = fakeJournal(dir.path);
    try {
      const jr = await bootcfsUnderJournal(journal, dir.path, ["--root", root, "status", "--json"]);
      assert.equal(jr.code, 0, jr.stderr);
      const warnings = journal.drain().filter((rec) => rec.PRIORITY === "4");
      assert.equal(warnings.length, 1);
      assert.equal(warnings[0].MESSAGE, `No origin file for deployment ${missing}`);
      assert.equal(warnings[0].F_MESSAGE_ID, "d264f924dadb4c31bff0412107d391fb");
      assert.equal(warnings[0].F_BOOTC_OPERATION, "status");
    } finally {
      journal.close();
    }
  });

  await t.step("a legacy .imginfo deployment: its digest is the sha256 of the manifest serialised again", async () => {
    const legacy = "f6".repeat(64);
    const manifest = {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: `sha256:${"1".repeat(64)}`, size: 9 },
      layers: [],
      annotations: { "org.opencontainers.image.version": "0.5" },
    };
    const stateDir = `${sysroot}/state/deploy/${legacy}`;
    await write(
      `${stateDir}/${legacy}.origin`,
      formatOrigin({ imageReference: originReference("docker://quay.io/example/old:0.5"), bootType: "bls" }),
    );
    await write(
      `${stateDir}/${legacy}.imginfo`,
      JSON.stringify({ config: { architecture: "arm64", created: "2025-05-05T05:05:05Z", os: "linux" }, manifest }),
    );
    await write(`${entries}/${blsFileName(OS_ID, "0.5", false)}`, entryText(legacy, "0.5", `bootc-${OS_ID}-3`));
    const r = await status("--json");
    assert.equal(r.code, 0, r.stderr);
    const others = JSON.parse(r.stdout).status.otherDeployments;
    assert.deepEqual(others.map((e: Json) => e.composefs.verity), [v2.imageId, v1.imageId, legacy]);
    assert.deepEqual(others[2].image, {
      architecture: "arm64",
      image: { image: "quay.io/example/old:0.5", transport: "registry" },
      imageDigest: createHash("sha256").update(JSON.stringify(manifest)).digest("hex"),
      timestamp: "2025-05-05T05:05:05Z",
      version: "0.5",
    });
    assert.equal(others[2].composefs.bootDigest, null);
    const human = await status("--format", "humanreadable");
    assert.match(human.stdout, /\n {3}Other image: quay\.io\/example\/old:0\.5\n {8}Digest: [0-9a-f]{64} \(arm64\)\n/);
  });

  await t.step("an unparsable .conf: exit 1 with one error line naming it", async () => {
    await write(`${entries}/broken.conf`, "title no version\nlinux /boot/x/vmlinuz\n");
    const r = await status("--json");
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    const lines = r.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^error: .*boot entry entries\/broken\.conf: BLS entry has no 'version'$/);
  });
});

Deno.test("status of a root without deployments: an empty document, and the human form says nothing is booted", async () => {
  await using dir = await scratchDir("bootcfs-status-");
  const r = await bootcfs(["--root", dir.path, "status", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).status, {
    booted: null,
    readOnly: false,
    rollback: null,
    rollbackQueued: false,
    staged: null,
    type: null,
    usrOverlay: null,
  });
  const h = await bootcfs(["--root", dir.path, "status", "--format", "humanreadable"]);
  assert.equal(h.stdout, `No deployment of ${dir.path} is booted.\n`);
  const bad = await bootcfs(["--root", dir.path, "status", "--format", "toml"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^error: --format must be one of humanreadable, yaml, json, not 'toml'\n/);
});
