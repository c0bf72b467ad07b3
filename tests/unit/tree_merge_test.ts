/**
 * Layer merge (oci-and-boot.md §6.2) and tar entry → tree rules (§4.4 step 3), table-driven: real
 * tars built by lib/tar's writer, parsed by its reader, merged, and compared as hand-written
 * dumpfiles.
 */
import assert from "node:assert/strict";
import { dumpfileText } from "../../lib/dumpfile/mod.ts";
import {
  buildTar,
  encodeHeader,
  END_OF_ARCHIVE,
  readTar,
  setChecksum,
  type TarBuildItem,
  type TarEntry,
  type TarWriteEntry,
} from "../../lib/tar/mod.ts";
import {
  type Directory,
  type LayerEntry,
  layerEntry,
  LayerMergeError,
  LayerMerger,
  layerPath,
  type Leaf,
  type LeafContent,
  lookup,
  makedev,
} from "../../lib/tree/mod.ts";

const te = new TextEncoder();
const d = (path: string, extra: Partial<TarWriteEntry> = {}): TarBuildItem => ({
  entry: { path, kind: "dir", ...extra },
});
const f = (path: string, data = "", extra: Partial<TarWriteEntry> = {}): TarBuildItem => ({
  entry: { path, kind: "file", ...extra },
  data: te.encode(data),
});
const h = (path: string, target: string, extra: Partial<TarWriteEntry> = {}): TarBuildItem => ({
  entry: { path, kind: "hardlink", linkTarget: target, ...extra },
});
const s = (path: string, target: string): TarBuildItem => ({ entry: { path, kind: "symlink", linkTarget: target } });

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** The tar members of `tar` as merge entries; files > 64 bytes become external with a made-up id. */
async function entriesOf(tar: Uint8Array): Promise<LayerEntry[]> {
  const out: LayerEntry[] = [];
  for await (const ev of readTar(once(tar))) {
    if (ev.type !== "entry") continue;
    let file: LeafContent | undefined;
    if (ev.kind === "file") {
      const data = (await ev.bytes()).slice();
      file = data.length > 64
        ? {
          kind: "external",
          id: { alg: "sha256", digest: new Uint8Array(32).fill(data.length & 0xff) },
          size: data.length,
        }
        : { kind: "inline", data };
    }
    out.push(layerEntry(ev as TarEntry, file));
  }
  return out;
}

async function merge(layers: TarBuildItem[][]): Promise<Directory> {
  const m = new LayerMerger();
  for (const [i, items] of layers.entries()) {
    m.beginLayer(`L${i + 1}`);
    for (const e of await entriesOf(buildTar(items))) m.apply(e);
  }
  return m.root;
}

/** A raw tar from headers patched by `patch` (for entries the writer cannot produce). */
function rawTar(entry: TarWriteEntry, patch: (hdr: Uint8Array) => void): Uint8Array {
  const hdr = encodeHeader(entry);
  const main = hdr.subarray(hdr.length - 512);
  patch(main);
  setChecksum(main);
  const out = new Uint8Array(hdr.length + END_OF_ARCHIVE.length);
  out.set(hdr);
  return out;
}

/** The uninitialised root's line: nlink is 2 + its subdirectories. */
const root = (nlink: number) => `/ 0 40000 ${nlink} 0 0 0 0.0 - - -\n`;

interface Case {
  name: string;
  layers: TarBuildItem[][];
  /** The expected dumpfile, or an error message pattern. */
  want: string | RegExp;
}

const cases: Case[] = [
  {
    name: "every entry kind; permission bits, owner and mtime from the header; root stays uninitialised",
    layers: [[
      d("etc", { mode: 0o750, uid: 1, gid: 2, mtime: 100 }),
      f("etc/a", "hello", { mode: 0o4755, uid: 3, gid: 4, mtime: 200 }),
      s("etc/l", "../x//y/."),
      { entry: { path: "etc/p", kind: "fifo", mode: 0o600 } },
      { entry: { path: "etc/c", kind: "char", devMajor: 1, devMinor: 3 } },
      { entry: { path: "etc/b", kind: "block", devMajor: 300, devMinor: 70000 } },
      { entry: { path: "etc/w", kind: "char", devMajor: 0, devMinor: 0 } },
    ]],
    want: root(3) +
      "/etc 0 40750 2 1 2 0 100.0 - - -\n" +
      "/etc/a 5 104755 1 3 4 0 200.0 - hello -\n" +
      "/etc/b 0 60644 1 0 0 286338160 0.0 - - -\n" +
      "/etc/c 0 20644 1 0 0 259 0.0 - - -\n" +
      "/etc/l 9 120777 1 0 0 0 0.0 ../x//y/. - -\n" +
      "/etc/p 0 10600 1 0 0 0 0.0 - - -\n" +
      "/etc/w 0 20644 1 0 0 0 0.0 - - -\n",
  },
  {
    name: "the root entry (./) replaces the root's stat",
    layers: [[d("./", { mode: 0o700, uid: 5, gid: 6, mtime: 7 }), d("a")], [d("/", { mode: 0o711, mtime: 9 })]],
    want: "/ 0 40711 3 0 0 0 9.0 - - -\n/a 0 40755 2 0 0 0 0.0 - - -\n",
  },
  { name: "a root entry that is not a directory is refused", layers: [[f("./")]], want: /L1: "\/": the root entry/ },
  {
    name: "paths are normalised: leading / and ./, empty and . components, trailing /",
    layers: [[d("/a/"), d("./a/./b//"), f("a//b/./c")]],
    want: root(3) + "/a 0 40755 3 0 0 0 0.0 - - -\n/a/b 0 40755 2 0 0 0 0.0 - - -\n/a/b/c 0 100644 1 0 0 0 0.0 - - -\n",
  },
  { name: "a .. component is refused", layers: [[d("a"), f("a/../b")]], want: /"\.\."/ },
  {
    name: "a missing parent is an error naming the layer and the path (parents are never created)",
    layers: [[d("a")], [f("a/b/c")]],
    want: /layer L2: "\/a\/b\/c": parent directory "\/a\/b" does not exist/,
  },
  {
    name: "a parent that is a file is an error",
    layers: [[f("a"), f("a/b")]],
    want: /L1: "\/a\/b": "\/a" is not a directory/,
  },
  {
    name: "a hardlink shares the target's inode; the link header's own metadata is discarded",
    layers: [[f("a", "x", { mode: 0o600, uid: 7 }), h("b", "a", { mode: 0o777, uid: 99, mtime: 5 })]],
    want: root(2) + "/a 1 100600 2 7 0 0 0.0 - x -\n/b 0 @120000 - - - - 0.0 /a - -\n",
  },
  {
    name: "a hardlink resolves in the merged tree; replacing the target later keeps the old inode",
    layers: [[d("d"), f("d/a", "old")], [h("d/b", "./d/a"), f("d/a", "new")]],
    want: root(3) +
      "/d 0 40755 2 0 0 0 0.0 - - -\n/d/a 3 100644 1 0 0 0 0.0 - new -\n/d/b 3 100644 1 0 0 0 0.0 - old -\n",
  },
  {
    name: "a hardlink to a missing target is an error",
    layers: [[h("b", "a")]],
    want: /L1: "\/b": hardlink target "\/a" does not exist/,
  },
  {
    name: "a hardlink to a directory is an error",
    layers: [[d("a"), h("b", "a")]],
    want: /hardlink target "\/a" is a directory/,
  },
  { name: "a hardlink to the root is an error", layers: [[h("b", "./")]], want: /hardlink to the root/ },
  {
    name: "a hardlinked whiteout whose target is missing is still an error (upstream order kept)",
    layers: [[d("a")], [h("a/.wh.x", "nope")]],
    want: /L2: "\/a\/\.wh\.x": hardlink target "\/nope" does not exist/,
  },
  {
    name: ".wh.NAME removes a file or a whole subtree; absent names and a bare .wh. are no-ops",
    layers: [
      [d("a"), f("a/f"), d("a/sub"), f("a/sub/x"), f("a/keep")],
      [f("a/.wh.f"), f("a/.wh.sub"), f("a/.wh.absent"), f("a/.wh.")],
    ],
    want: root(3) + "/a 0 40755 2 0 0 0 0.0 - - -\n/a/keep 0 100644 1 0 0 0 0.0 - - -\n",
  },
  {
    name: "a whiteout in a missing directory is an error",
    layers: [[f("a/.wh.b")]],
    want: /parent directory "\/a" does not exist/,
  },
  {
    name: "a whiteout removes what the same layer added before it (tar order, as upstream and podman)",
    layers: [[d("a"), f("a/+x"), f("a/.wh.+x")]],
    want: root(3) + "/a 0 40755 2 0 0 0 0.0 - - -\n",
  },
  {
    name: ".wh..wh..opq clears the lower layers' children and leaves the directory's stat alone",
    layers: [[d("a", { mode: 0o700 }), f("a/x"), d("a/s"), f("a/s/y")], [
      f("a/.wh..wh..opq", "", { mode: 0o600 }),
      f("a/z"),
    ]],
    want: root(3) + "/a 0 40700 2 0 0 0 0.0 - - -\n/a/z 0 100644 1 0 0 0 0.0 - - -\n",
  },
  {
    name: "opaque directory keeps entries added earlier in the same layer (upstream quirk fixed)",
    layers: [
      [d("a"), f("a/x"), d("a/+s"), f("a/+s/lower"), f("a/-f")],
      [
        d("a", { mtime: 3 }),
        f("a/+new", "n"),
        d("a/+s", { mtime: 4 }),
        f("a/+s/+upper"),
        f("a/.wh..wh..opq"),
        f("a/z"),
      ],
    ],
    want: root(3) +
      "/a 0 40755 3 0 0 0 3.0 - - -\n" +
      "/a/+new 1 100644 1 0 0 0 0.0 - n -\n" +
      "/a/+s 0 40755 2 0 0 0 4.0 - - -\n" +
      "/a/+s/+upper 0 100644 1 0 0 0 0.0 - - -\n" +
      "/a/z 0 100644 1 0 0 0 0.0 - - -\n",
  },
  {
    name: "a directory over a directory keeps the children and takes the newer stat",
    layers: [[d("a", { mode: 0o700, uid: 1, mtime: 1 }), f("a/x")], [d("a", { mode: 0o755, uid: 2, mtime: 2 })]],
    want: root(3) + "/a 0 40755 2 2 0 0 2.0 - - -\n/a/x 0 100644 1 0 0 0 0.0 - - -\n",
  },
  {
    name: "a file replaces a directory subtree, and a directory replaces a file",
    layers: [[d("a"), f("a/x"), f("b", "file")], [f("a", "now a file"), d("b")]],
    want: root(3) + "/a 10 100644 1 0 0 0 0.0 - now\\x20a\\x20file -\n/b 0 40755 2 0 0 0 0.0 - - -\n",
  },
  {
    name: "PAX: sub-second mtime to nanoseconds, 32-bit owner truncation, SCHILY xattrs (LIBARCHIVE ignored)",
    layers: [[
      f("a", "", {
        mtime: "1700000000.5",
        uid: 2 ** 32 + 1,
        gid: 2 ** 32 + 2,
        xattrs: { "user.k": "v", "security.capability": new Uint8Array([1, 0, 0xff]) },
        pax: { "LIBARCHIVE.xattr.user.lib": "x" },
      }),
      f("b", "", { mtime: "12.1234567891" }),
    ]],
    want: root(2) +
      "/a 0 100644 1 1 2 0 1700000000.500000000 - - - security.capability=\\x01\\x00\\xff user.k=v\n" +
      "/b 0 100644 1 0 0 0 12.123456789 - - -\n",
  },
  {
    name: "non-UTF-8 names and symlink targets stay exact bytes",
    layers: [[f("x", "", { pax: { path: new Uint8Array([0x61, 0xff]) } }), {
      entry: { path: "l", kind: "symlink", linkTarget: "t", pax: { linkpath: new Uint8Array([0xfe]) } },
    }]],
    want: root(2) + "/a\\xff 0 100644 1 0 0 0 0.0 - - -\n/l 1 120777 1 0 0 0 0.0 \\xfe - -\n",
  },
];

for (const c of cases) {
  Deno.test(`merge: ${c.name}`, async () => {
    if (typeof c.want === "string") assert.equal(dumpfileText(await merge(c.layers)), c.want);
    else await assert.rejects(merge(c.layers), c.want);
  });
}

Deno.test("merge: a merge error is a LayerMergeError", async () => {
  await assert.rejects(merge([[f("a/b")]]), LayerMergeError);
});

Deno.test("merge: hardlinks are one leaf object (nlink = number of names)", async () => {
  const root = await merge([[d("d"), f("d/a", "x")], [h("d/b", "d/a"), h("c", "d/b")]]);
  const a = lookup(root, "/d/a") as Leaf;
  assert.equal(lookup(root, "/d/b"), a);
  assert.equal(lookup(root, "/c"), a);
});

Deno.test("merge: external contents carry only their object id and size", async () => {
  const big = "y".repeat(65);
  const root = await merge([[f("big", big)]]);
  const leaf = lookup(root, "/big") as Leaf;
  assert.equal(leaf.content.kind, "external");
  assert.equal(leaf.size, 65);
});

Deno.test("entry: a NUL in a PAX path is refused", async () => {
  await assert.rejects(merge([[f("x", "", { pax: { path: "a\0b" } })]]), /NUL/);
});

Deno.test("entry: unsupported tar entry types are refused", async () => {
  const tar = rawTar({ path: "z", kind: "file" }, (hdr) => (hdr[156] = "Z".charCodeAt(0)));
  await assert.rejects(entriesOf(tar), /unsupported tar entry type "Z"/);
});

Deno.test("entry: a device without device numbers (V7 header) is refused", async () => {
  const tar = rawTar({ path: "c", kind: "char", devMajor: 1, devMinor: 1 }, (hdr) => hdr.fill(0, 257, 500));
  await assert.rejects(entriesOf(tar), /has no device numbers/);
});

Deno.test("entry: header mode type bits are dropped; the node kind gives the type", async () => {
  const tar = rawTar({ path: "d", kind: "dir", mode: 0o755 }, (hdr) => hdr.set(te.encode("0100755\0"), 100));
  const [e] = await entriesOf(tar);
  assert.equal(e.stat.mode, 0o755);
  assert.equal(e.item.kind, "dir");
});

Deno.test("layerPath and makedev", () => {
  assert.equal(layerPath("./"), "/");
  assert.equal(layerPath("/"), "/");
  assert.equal(layerPath("a//./b/"), "/a/b");
  assert.throws(() => layerPath("a/.."), /"\.\."/);
  // glibc makedev, values from the C formula (python: ((M & 0xfffff000) << 32) | …).
  assert.equal(makedev(8, 1), 2049);
  assert.equal(makedev(0x12345, 3), 316659349013763);
  assert.equal(makedev(300, 70000), 286338160);
});
