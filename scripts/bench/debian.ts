/**
 * The bench OS image: a debootstrap'd Debian 12 tree (systemd, kernel, Python, git, … — about
 * 800 MiB and 24k entries) cut into four gzip layers of an OCI layout, the shape of a real bootable
 * image. Both are built once and kept in `$BENCH_CACHE` (default `/var/tmp/bootcfs-bench`), since
 * debootstrap needs Debian's mirror and takes a minute or two.
 */
import { createHash } from "node:crypto";
import { finishLayout, putBlob } from "./layout.ts";
import { measure } from "./measure.ts";

const CACHE = Deno.env.get("BENCH_CACHE") ?? "/var/tmp/bootcfs-bench";
const MIRROR = Deno.env.get("BENCH_DEBIAN_MIRROR") ?? "http://deb.debian.org/debian";
const PACKAGES = [
  "systemd,systemd-sysv,udev,kmod,dbus,iproute2,openssh-server,curl,less,vim-tiny,python3,linux-image-amd64",
  "locales,man-db,perl,python3-pip,git,python3-yaml,python3-requests",
].join(",");

/**
 * Layers by path prefix, the first matching wins; every layer also carries the parent directories
 * of its entries, as image builders write them. Sizes come out near 390/180/130/100 MiB, so two
 * cores can share the work.
 */
const LAYERS: { name: string; prefixes: string[] }[] = [
  { name: "kernel modules", prefixes: ["usr/lib/modules/"] },
  { name: "libraries and boot", prefixes: ["usr/lib/", "boot/"] },
  { name: "shared data and programs", prefixes: ["usr/share/", "usr/bin/", "usr/sbin/"] },
  { name: "the rest", prefixes: [""] },
];

/** The debootstrap'd tree (built when missing). */
export async function debianRoot(): Promise<string> {
  const root = `${CACHE}/debian-rootfs`;
  try {
    await Deno.stat(`${root}/etc/os-release`);
    return root;
  } catch { /* build it */ }
  await Deno.mkdir(CACHE, { recursive: true });
  const tmp = `${root}.tmp`;
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  console.error(`bench: debootstrap of Debian 12 into ${root} (once)…`);
  await measure("debootstrap", ["--variant=minbase", `--include=${PACKAGES}`, "bookworm", tmp, MIRROR]);
  // What an OS image does not ship: apt's caches, and device nodes (ostree cannot even commit them).
  await measure("sh", ["-c", `rm -rf ${tmp}/var/cache/apt/* ${tmp}/var/lib/apt/lists/* ${tmp}/dev/*`]);
  await Deno.rename(tmp, root);
  return root;
}

/** Relative paths of the tree (directories included), sorted as `tar --sort=name` would. */
async function listTree(root: string): Promise<string[]> {
  const r = await measure("sh", ["-c", `cd ${root} && find . -mindepth 1 -printf '%P\\n' | LC_ALL=C sort`]);
  return r.stdout.split("\n").filter((l) => l !== "");
}

/** Splits `paths` into the {@link LAYERS}, adding the parent directories each layer needs. */
function split(paths: string[]): string[][] {
  const out: string[][] = LAYERS.map(() => []);
  for (const p of paths) {
    const i = LAYERS.findIndex((l) => l.prefixes.some((x) => p.startsWith(x)));
    out[i].push(p);
  }
  return out.map((list) => {
    const need = new Set<string>(list);
    for (const p of list) {
      for (let s = p.lastIndexOf("/"); s > 0; s = p.lastIndexOf("/", s - 1)) need.add(p.slice(0, s));
    }
    return [...need].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  });
}

/**
 * The OCI layout of the Debian image (tag `bench`), built when missing; returns its path, and the
 * tree's file count and bytes for the report.
 */
export async function debianLayout(): Promise<{ layout: string; files: number; mib: number; blobMiB: number }> {
  const root = await debianRoot();
  const layout = `${CACHE}/debian-oci`;
  const paths = await listTree(root);
  const du = await measure("sh", [
    "-c",
    `cd ${root} && find . -type f -printf '%s\\n' | awk '{s+=$1} END {print NR, s}'`,
  ]);
  const [files, bytes] = du.stdout.trim().split(" ").map(Number);
  const info = { layout, files, mib: bytes / 2 ** 20, blobMiB: 0 };
  try {
    const stat = JSON.parse(await Deno.readTextFile(`${layout}/bench.json`));
    return { ...info, blobMiB: stat.blobMiB };
  } catch { /* build it */ }
  const tmp = `${layout}.tmp`;
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  await Deno.mkdir(`${tmp}/blobs/sha256`, { recursive: true });
  console.error(`bench: writing the Debian image's gzip layers into ${layout} (once)…`);
  const lists = split(paths);
  const layers = [];
  const diffIds = [];
  for (const [i, list] of lists.entries()) {
    await Deno.writeTextFile(`${tmp}/list`, list.join("\n") + "\n");
    const tar = `${tmp}/layer${i}.tar`;
    await measure("tar", [
      "-C",
      root,
      "--format=pax",
      "--xattrs",
      "--numeric-owner",
      "--no-recursion",
      "--verbatim-files-from",
      "-T",
      `${tmp}/list`,
      "-cf",
      tar,
    ]);
    diffIds.push(`sha256:${await sha256File(tar)}`);
    await measure("gzip", ["-n", "-6", tar]);
    layers.push({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", ...await putBlob(tmp, `${tar}.gz`) });
  }
  await Deno.remove(`${tmp}/list`);
  await finishLayout(tmp, layers, diffIds, "bench");
  const blobMiB = layers.reduce((a, l) => a + l.size, 0) / 2 ** 20;
  await Deno.writeTextFile(`${tmp}/bench.json`, JSON.stringify({ blobMiB }));
  await Deno.rename(tmp, layout);
  return { ...info, blobMiB };
}

async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  using f = await Deno.open(path);
  for await (const c of f.readable) h.update(c);
  return h.digest("hex");
}

if (import.meta.main) console.log(JSON.stringify(await debianLayout()));
