/**
 * Helpers for the containers-storage integration tests: a podman overlay store in a scratch
 * directory (mounts cleaned up on disposal), a hand-made multi-layer docker-archive with tricky
 * tar entries, a podman-built image with whiteouts, and a reference tar → layer splitstream
 * splitter over `lib/tar` (oci-and-boot.md §4.3) to compare the zero-copy import against.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { cleanupOverlayMounts } from "../../lib/podman/service.ts";
import type { Repository } from "../../lib/repository/mod.ts";
import { contentType, INLINE_CONTENT_MAX } from "../../lib/splitstream/mod.ts";
import {
  buildTar,
  encodeHeader,
  paddingOf,
  paxRecord,
  readTar,
  setChecksum,
  type TarBuildItem,
  type TarWriteEntry,
} from "../../lib/tar/mod.ts";
import { run } from "./cli.ts";
import { gen } from "./oci.ts";
import { concat } from "../../lib/bytes/mod.ts";

/** A podman overlay storage root. */
export interface OverlayStore extends AsyncDisposable {
  readonly root: string;
  readonly runRoot: string;
  /** `podman --root … --runroot … --storage-driver overlay ARGS`; returns stdout. */
  podman(...args: string[]): Promise<string>;
}

/** A new overlay store at `<dir>/storage` (the run root is a short temp dir: c/storage allows ≤ 50 chars). */
export async function overlayStore(dir: string): Promise<OverlayStore> {
  const root = `${dir}/storage`;
  const runRoot = await Deno.makeTempDir({ prefix: "bcfs-cs-" });
  const base = ["--root", root, "--runroot", runRoot, "--storage-driver", "overlay"];
  return {
    root,
    runRoot,
    podman: (...args) => run("podman", [...base, ...args]),
    async [Symbol.asyncDispose]() {
      // podman leaves <root>/overlay bind-mounted on itself (test-rig.md §8.12).
      cleanupOverlayMounts(root);
      cleanupOverlayMounts(runRoot);
      await Deno.remove(runRoot, { recursive: true });
    },
  };
}

const te = new TextEncoder();
const file = (path: string, data: Uint8Array | string, extra: Partial<TarWriteEntry> = {}): TarBuildItem => ({
  entry: { path, kind: "file", mtime: 1700000000, ...extra },
  data: typeof data === "string" ? te.encode(data) : data,
});
const dir = (path: string, extra: Partial<TarWriteEntry> = {}): TarBuildItem => ({
  entry: { path, kind: "dir", mtime: 1700000000, ...extra },
});

/** An extension header (`g`, `L`) with its data, padded; GNU magic for `L`. */
function extension(typeflag: string, name: string, data: Uint8Array): Uint8Array {
  const h = encodeHeader({ path: name, kind: "file", size: data.length, mtime: 0 });
  h[156] = typeflag.charCodeAt(0);
  if (typeflag === "L") h.set(te.encode("ustar  \0"), 257);
  setChecksum(h);
  return concat([h, data, new Uint8Array(paddingOf(data.length))]);
}

/** A regular file with a GNU-format header (name truncated to 100 bytes), its content and padding. */
function gnuFile(name: string, data: Uint8Array): Uint8Array {
  const h = encodeHeader({ path: name, kind: "file", size: data.length, mtime: 1700000000 });
  h.set(te.encode("ustar  \0"), 257);
  setChecksum(h);
  return concat([h, data, new Uint8Array(paddingOf(data.length))]);
}

/** The layers of the hand-made image: exact tar bytes, which the rebuilt layers must equal. */
export function customLayers(): Uint8Array[] {
  const long = `data/${"d".repeat(90)}/${"n".repeat(99)}`; // ustar prefix + name
  const longer = `data/${"x".repeat(120)}/${"y".repeat(150)}.bin`; // needs a PAX path
  const l1: TarBuildItem[] = [
    dir("data/"),
    dir("etc/"),
    file("etc/hostname", "cstor\n"),
    file("data/s0", ""),
    file("data/s1", "x"),
    ...[63, 64, 65, 511, 512, 513, 4096, 200_000].map((n) => file(`data/s${n}`, gen(n, `s${n}`))),
    file("data/exec.sh", "#!/bin/sh\necho hi\n", { mode: 0o755 }),
    dir(`data/${"d".repeat(90)}/`),
    file(long, gen(100, "long")),
    dir(`data/${"x".repeat(120)}/`),
    file(longer, gen(3000, "longer")),
    file("data/ünïcode.txt", gen(70, "unicode")),
    file("data/xattr", gen(80, "xattr"), { xattrs: { "user.cstor": "hello" } }),
    file("data/frac-mtime", gen(90, "frac"), { mtime: "1700000000.5" }),
    { entry: { path: "data/hardlink-to-s65", kind: "hardlink", linkTarget: "data/s65", mtime: 1700000000 } },
    { entry: { path: "data/symlink", kind: "symlink", linkTarget: "s4096", mtime: 1700000000 } },
    { entry: { path: "data/fifo", kind: "fifo", mtime: 1700000000 } },
    dir("data/opq/"),
    file("data/opq/old", gen(66, "old")),
    file("data/to-delete", "bye\n"),
  ];
  const l2: TarBuildItem[] = [
    dir("data/"),
    file("data/.wh.to-delete", ""),
    dir("data/opq/"),
    file("data/opq/.wh..wh..opq", ""),
    file("data/opq/new", gen(67, "new")),
    file("data/s65", gen(100, "s65-v2")),
  ];
  const l3 = [
    // git-archive style: a global PAX header first (containers-storage ignores it).
    extension("g", "pax_global_header", paxRecord("comment", "cstor test")),
    buildTar([dir("data/"), dir("data/extra/"), file("data/extra/added.txt", "added\n")]).subarray(0, 4 * 512), // three entries without the end-of-archive blocks
    // A GNU long name (`L`) before a GNU-format header.
    extension("L", "././@LongLink", te.encode(`data/extra/${"g".repeat(110)}\0`)),
    gnuFile(`data/extra/${"g".repeat(89)}`, gen(70, "gnu")),
  ];
  const third = concat([...l3, new Uint8Array(1024)]);
  // The last layer ends with GNU tar's record padding to 10 KiB after the end-of-archive blocks.
  return [buildTar(l1), buildTar(l2), concat([third, new Uint8Array(10240 - third.length)])];
}

/** sha256 digest string of `data`. */
export function sha256(data: Uint8Array): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/**
 * Writes a docker-archive of {@link customLayers} named `name` to `path` and returns the
 * layer tars (for `podman load -i`).
 */
export async function writeCustomArchive(path: string, name: string): Promise<Uint8Array[]> {
  const layers = customLayers();
  const diffIds = layers.map(sha256);
  const config = te.encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    created: "2023-11-14T22:13:20Z",
    config: {},
    rootfs: { type: "layers", diff_ids: diffIds },
    history: layers.map(() => ({ created: "2023-11-14T22:13:20Z" })),
  }));
  const cfgName = `${sha256(config).slice(7)}.json`;
  const manifest = [{ Config: cfgName, RepoTags: [name], Layers: diffIds.map((d) => `${d.slice(7)}.tar`) }];
  const items: TarBuildItem[] = [
    file("manifest.json", JSON.stringify(manifest)),
    file(cfgName, config),
    ...layers.map((l, i) => file(`${diffIds[i].slice(7)}.tar`, l)),
  ];
  await Deno.writeFile(path, buildTar(items));
  return layers;
}

/**
 * Builds `name` with podman (reproducible timestamps): `FROM scratch` + COPY of a small tree,
 * then a whiteout, an opaque directory and another COPY, like rig/layered (test-rig.md §2.3).
 */
export async function buildLayeredImage(store: OverlayStore, ctx: string, name: string): Promise<void> {
  const root = `${ctx}/rootfs`;
  await Deno.mkdir(`${root}/data/dir-to-opaque`, { recursive: true });
  await Deno.mkdir(`${root}/bin`);
  await Deno.copyFile("/bin/busybox", `${root}/bin/busybox`);
  await Deno.chmod(`${root}/bin/busybox`, 0o755);
  for (const n of [0, 1, 64, 65, 4095, 65536]) await Deno.writeFile(`${root}/data/s${n}`, gen(n, `b${n}`));
  await Deno.link(`${root}/data/s65536`, `${root}/data/hardlink`);
  await Deno.symlink("s64", `${root}/data/symlink`);
  await Deno.writeTextFile(`${root}/data/dir-to-opaque/x`, "x\n");
  await Deno.writeTextFile(`${root}/data/to-delete`, "bye\n");
  await Deno.mkdir(`${ctx}/extra`);
  await Deno.writeFile(`${ctx}/extra/big`, gen(300_000, "extra"));
  await Deno.writeTextFile(
    `${ctx}/Containerfile`,
    "FROM scratch\nCOPY rootfs/ /\n" +
      'RUN ["/bin/busybox","rm","/data/to-delete"]\n' +
      'RUN ["/bin/busybox","sh","-c","rm -rf /data/dir-to-opaque && mkdir /data/dir-to-opaque && echo new > /data/dir-to-opaque/z"]\n' +
      "COPY extra/ /data/extra/\n",
  );
  await store.podman(
    "build",
    "-q",
    "--timestamp",
    "1700000000",
    "--isolation=chroot",
    "--network=host",
    "-t",
    name,
    ctx,
  );
}

/**
 * Reference layer import: splits a tar stream into a layer splitstream with the rules of
 * oci-and-boot.md §4.3 (headers and small contents inline, regular files > 64 bytes external,
 * everything after the end marker inline) and returns the splitstream file bytes.
 */
export async function referenceSplit(repo: Repository, tar: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const w = repo.createStreamWriter(contentType("ocilayer"));
  for await (const ev of readTar(tar)) {
    if (ev.type === "global") w.writeInline(ev.headerBytes);
    else if (ev.type === "end") {
      w.writeInline(ev.marker);
      for await (const c of ev.trailing()) w.writeInline(c);
    } else {
      w.writeInline(ev.headerBytes);
      if (ev.kind === "file" && ev.size > INLINE_CONTENT_MAX) {
        const stored = await repo.ensureObjectFromStream(ev.body());
        w.addExternal(stored.id, stored.size);
      } else {
        for await (const c of ev.body()) w.writeInline(c);
      }
      w.writeInline(await ev.padding());
    }
  }
  return w.finish();
}
