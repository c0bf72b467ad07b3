/**
 * Test helpers for OCI images: deterministic content, layer compression, hand-made OCI layouts
 * (single image or multi-platform index), and a throw-away podman storage to build real images.
 *
 * ```ts
 * import { buildTar } from "../../lib/tar/mod.ts";
 * const tar = buildTar([{ entry: { path: "a", kind: "file" }, data: gen(100, "a") }]);
 * const img = await writeOciLayout(dir, { layers: [{ tar, compression: "gzip" }], tag: "v1" });
 * // img.manifestDigest, img.configDigest, img.layers[0].digest / .diffId …
 *
 * await using pm = await podmanStorage();
 * await pm.buildScratch("localhost/t:1", { "etc/hostname": "x\n" });
 * await pm.podman(["save", "--format", "oci-archive", "-o", `${dir}/a.tar`, "localhost/t:1"]);
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { zstdCompress } from "../../ffi/zstd.ts";
import { Repository } from "../../lib/repository/mod.ts";
import { run } from "./cli.ts";

const te = new TextEncoder();

/** `n` random bytes: incompressible content, made quickly (getRandomValues takes 64 KiB at a time). */
export function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) crypto.getRandomValues(out.subarray(off, Math.min(n, off + 65536)));
  return out;
}

/** Every object file of the repository (or digest store) at `path`, as sorted `xx/rest` names. */
export function objectNames(path: string): string[] {
  const names: string[] = [];
  for (const d of Deno.readDirSync(`${path}/objects`)) {
    if (d.isDirectory) {
      for (const o of Deno.readDirSync(`${path}/objects/${d.name}`)) names.push(`${d.name}/${o.name}`);
    }
  }
  return names.sort();
}

/**
 * Deterministic test content: the first `n` bytes of SHA-256(seed ‖ 0) ‖ SHA-256(seed ‖ 1) ‖ …,
 * the counter an 8-byte little-endian integer (test-rig.md §2.3).
 *
 * @example
 * ```ts
 * const data = gen(65, "s65");
 * ```
 */
export function gen(n: number, seed: string): Uint8Array {
  const out = new Uint8Array(n);
  const ctr = new Uint8Array(8);
  const view = new DataView(ctr.buffer);
  const s = te.encode(seed);
  for (let i = 0, o = 0; o < n; i++) {
    view.setBigUint64(0, BigInt(i), true);
    const d = createHash("sha256").update(s).update(ctr).digest();
    out.set(d.subarray(0, Math.min(32, n - o)), o);
    o += 32;
  }
  return out;
}

/** `sha256:<hex>` of bytes, computed with node:crypto (independent of lib/). */
export function sha256(data: Uint8Array): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** Layer compressions the helpers produce. */
export type TestCompression = "none" | "gzip" | "zstd";

/** Compresses `data`: gzip by node:zlib, zstd by libzstd (one frame). */
export function compress(data: Uint8Array, c: TestCompression): Uint8Array {
  if (c === "gzip") return new Uint8Array(gzipSync(data));
  if (c === "zstd") return zstdCompress(data);
  return data;
}

const LAYER_MEDIA_TYPE: Record<TestCompression, string> = {
  none: "application/vnd.oci.image.layer.v1.tar",
  gzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  zstd: "application/vnd.oci.image.layer.v1.tar+zstd",
};

/** One image for {@link writeOciLayout}. */
export interface TestImage {
  /** Uncompressed layer tars and how to store each. */
  layers: { tar: Uint8Array; compression: TestCompression }[];
  /** `org.opencontainers.image.ref.name` in index.json. */
  tag?: string;
  architecture?: string;
  os?: string;
  variant?: string;
  /** Extra top-level config fields (e.g. `config: { Labels }`). */
  config?: Record<string, unknown>;
}

/** A blob as written: descriptor fields plus the bytes. */
export interface TestBlob {
  mediaType: string;
  digest: string;
  size: number;
  bytes: Uint8Array;
}

/** What {@link writeOciLayout} wrote for one image. */
export interface WrittenImage {
  manifest: TestBlob;
  config: TestBlob;
  layers: (TestBlob & { diffId: string })[];
}

async function writeBlob(dir: string, mediaType: string, bytes: Uint8Array): Promise<TestBlob> {
  const digest = sha256(bytes);
  await Deno.mkdir(`${dir}/blobs/sha256`, { recursive: true });
  await Deno.writeFile(`${dir}/blobs/sha256/${digest.slice(7)}`, bytes);
  return { mediaType, digest, size: bytes.length, bytes };
}

const desc = (b: TestBlob) => ({ mediaType: b.mediaType, digest: b.digest, size: b.size });

/** Writes the blobs of one image (layers, config, manifest) into `dir/blobs`. */
export async function writeImageBlobs(dir: string, img: TestImage): Promise<WrittenImage> {
  const layers = [];
  for (const l of img.layers) {
    const b = await writeBlob(dir, LAYER_MEDIA_TYPE[l.compression], compress(l.tar, l.compression));
    layers.push({ ...b, diffId: sha256(l.tar) });
  }
  const configJson = {
    architecture: img.architecture ?? "amd64",
    os: img.os ?? "linux",
    ...(img.variant ? { variant: img.variant } : {}),
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    ...img.config,
  };
  const config = await writeBlob(
    dir,
    "application/vnd.oci.image.config.v1+json",
    te.encode(JSON.stringify(configJson)),
  );
  const manifestJson = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: desc(config),
    layers: layers.map(desc),
  };
  const manifest = await writeBlob(dir, manifestJson.mediaType, te.encode(JSON.stringify(manifestJson)));
  return { manifest, config, layers };
}

/**
 * Writes an OCI layout at `dir` (created if needed) holding `images`: each image's manifest is
 * listed in index.json (with its tag and platform). With `asIndex`, the manifests go into one
 * image index blob instead, and index.json lists only that index (tagged `asIndex.tag`).
 */
export async function writeOciLayout(
  dir: string,
  images: TestImage | TestImage[],
  opts: { asIndex?: { tag?: string } } = {},
): Promise<WrittenImage[] & { index?: TestBlob }> {
  const list = Array.isArray(images) ? images : [images];
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/oci-layout`, JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const written: WrittenImage[] & { index?: TestBlob } = [];
  const entries = [];
  for (const img of list) {
    const w = await writeImageBlobs(dir, img);
    written.push(w);
    entries.push({
      ...desc(w.manifest),
      platform: {
        architecture: img.architecture ?? "amd64",
        os: img.os ?? "linux",
        ...(img.variant ? { variant: img.variant } : {}),
      },
      ...(img.tag ? { annotations: { "org.opencontainers.image.ref.name": img.tag } } : {}),
    });
  }
  let top = entries;
  if (opts.asIndex) {
    const indexJson = { schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: entries };
    const index = await writeBlob(dir, indexJson.mediaType, te.encode(JSON.stringify(indexJson)));
    written.index = index;
    top = [{
      ...desc(index),
      ...(opts.asIndex.tag ? { annotations: { "org.opencontainers.image.ref.name": opts.asIndex.tag } } : {}),
    }] as typeof entries;
  }
  await Deno.writeTextFile(`${dir}/index.json`, JSON.stringify({ schemaVersion: 2, manifests: top }));
  return written;
}

/** A throw-away podman storage (vfs driver) in a temp dir; removed on disposal. */
export interface PodmanStorage extends AsyncDisposable {
  readonly dir: string;
  /** Runs `podman --root … --runroot … --storage-driver vfs ARGS`; returns stdout. */
  podman(args: string[]): Promise<string>;
  /**
   * Builds `FROM scratch` + `COPY rootfs/ /` with `files` (path → content) as image `name`,
   * reproducibly (`--timestamp 1700000000`), plus optional extra Containerfile lines and
   * `podman build` flags (e.g. `["--arch", "arm64"]`).
   */
  buildScratch(
    name: string,
    files: Record<string, string | Uint8Array>,
    extra?: string[],
    buildFlags?: string[],
  ): Promise<void>;
}

/** A new {@link PodmanStorage}. Needs the `podman` binary (no running containers). */
export async function podmanStorage(): Promise<PodmanStorage> {
  const dir = await Deno.makeTempDir({ prefix: "bootcfs-podman-" });
  const base = ["--root", `${dir}/root`, "--runroot", `${dir}/run`, "--storage-driver", "vfs"];
  const podman = (args: string[]) => run("podman", [...base, ...args]);
  return {
    dir,
    podman,
    async buildScratch(name, files, extra = [], buildFlags = []) {
      const ctx = await Deno.makeTempDir({ dir, prefix: "ctx-" });
      for (const [p, content] of Object.entries(files)) {
        const full = `${ctx}/rootfs/${p}`;
        await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
        await Deno.writeFile(full, typeof content === "string" ? te.encode(content) : content);
      }
      await Deno.writeTextFile(`${ctx}/Containerfile`, ["FROM scratch", "COPY rootfs/ /", ...extra].join("\n") + "\n");
      await podman(["build", "-q", "--timestamp", "1700000000", ...buildFlags, "-t", name, ctx]);
    },
    async [Symbol.asyncDispose]() {
      // vfs storage is plain directories (no mounts), so removing the tree is enough.
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function octal(v: number, len: number): string {
  return v.toString(8).padStart(len - 1, "0") + "\0";
}

/**
 * A one-file ustar layer as the Rust `tar` crate writes it in composefs-rs's
 * `test_config_verity_deterministic` (composefs-formats.md §3.7): `size` zero bytes, mode 0700,
 * numeric fields zero-padded octal + NUL, then 1024 zero bytes.
 */
export function rustTarLayer(name: string, size: number): Uint8Array {
  const h = new Uint8Array(512);
  const put = (off: number, s: string) => h.set(te.encode(s), off);
  put(0, name);
  put(100, octal(0o700, 8));
  put(108, octal(0, 8));
  put(116, octal(0, 8));
  put(124, octal(size, 12));
  put(136, octal(0, 12));
  put(156, "0");
  put(257, "ustar\0");
  put(263, "00");
  h.fill(0x20, 148, 156);
  const sum = h.reduce((a, b) => a + b, 0);
  put(148, octal(sum, 8));
  const out = new Uint8Array(512 + Math.ceil(size / 512) * 512 + 1024);
  out.set(h);
  return out;
}

/** A layer blob exactly as given (possibly corrupt), with the diff_id the config should claim. */
export interface RawLayer {
  blob: Uint8Array;
  mediaType: string;
  diffId: string;
  /** Size written in the manifest descriptor (default: the blob's length). */
  size?: number;
}

/**
 * Writes an OCI layout whose layer blobs, diff_ids and descriptor sizes are taken as given (for
 * hostile-input tests): config and manifest are consistent with them, the index lists the
 * manifest with `tag`.
 */
export async function writeRawOciLayout(
  dir: string,
  layers: RawLayer[],
  opts: { tag?: string; architecture?: string } = {},
): Promise<{ manifestDigest: string; configDigest: string; layerDigests: string[] }> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/oci-layout`, JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const blobs = [];
  for (const l of layers) {
    const b = await writeBlob(dir, l.mediaType, l.blob);
    blobs.push({ mediaType: b.mediaType, digest: b.digest, size: l.size ?? b.size });
  }
  const arch = opts.architecture ?? "amd64";
  const config = await writeBlob(
    dir,
    "application/vnd.oci.image.config.v1+json",
    te.encode(
      JSON.stringify({
        architecture: arch,
        os: "linux",
        rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
      }),
    ),
  );
  const manifestJson = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: desc(config),
    layers: blobs,
  };
  const manifest = await writeBlob(dir, manifestJson.mediaType, te.encode(JSON.stringify(manifestJson)));
  await Deno.writeTextFile(
    `${dir}/index.json`,
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{
        ...desc(manifest),
        platform: { architecture: arch, os: "linux" },
        ...(opts.tag ? { annotations: { "org.opencontainers.image.ref.name": opts.tag } } : {}),
      }],
    }),
  );
  return { manifestDigest: manifest.digest, configDigest: config.digest, layerDigests: blobs.map((b) => b.digest) };
}

/** An empty insecure repository in a temp directory, removed (after closing) on disposal. */
export function tempRepository(alg: "sha256" | "sha512" = "sha512"): { repo: Repository } & Disposable {
  const dir = Deno.makeTempDirSync({ prefix: "bootcfs-repo-" });
  const { repo } = Repository.init(`${dir}/repo`, { alg, formats: { default: 1, extra: [] }, insecure: true });
  return {
    repo,
    [Symbol.dispose]() {
      repo.close();
      Deno.removeSync(dir, { recursive: true });
    },
  };
}
