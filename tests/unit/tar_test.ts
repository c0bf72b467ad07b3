import assert from "node:assert/strict";
import {
  BLOCK,
  buildTar,
  encodeHeader,
  fileSource,
  normalizeTarPath,
  paddingOf,
  paxRecord,
  readTar,
  setChecksum,
  type TarEntry,
  type TarEvent,
  type TarLimits,
  tarSegments,
  type TarWriteEntry,
  writeTar,
} from "../../lib/tar/mod.ts";
import { gen, sha256 } from "../helpers/oci.ts";
import { concat } from "../../lib/bytes/mod.ts";

const te = new TextEncoder();

/** Splits `data` into chunks of the given sizes (cycled), as a source would deliver them. */
async function* chunked(data: Uint8Array, sizes: number[] = [data.length || 1]): AsyncGenerator<Uint8Array> {
  let o = 0;
  for (let i = 0; o < data.length; i++) {
    const n = sizes[i % sizes.length];
    yield data.slice(o, o + n);
    o += n;
  }
}

interface Parsed {
  entries: { entry: TarEntry; data: Uint8Array; pad: Uint8Array }[];
  events: TarEvent[];
  /** Every byte the reader handed back, in order: must equal the input. */
  replay: Uint8Array;
  trailing: Uint8Array;
}

async function parse(src: AsyncIterable<Uint8Array>, limits?: TarLimits): Promise<Parsed> {
  const out: Parsed = { entries: [], events: [], replay: new Uint8Array(0), trailing: new Uint8Array(0) };
  const parts: Uint8Array[] = [];
  for await (const ev of readTar(src, limits)) {
    out.events.push(ev);
    if (ev.type === "entry") {
      parts.push(ev.headerBytes);
      const body: Uint8Array[] = [];
      for await (const c of ev.body()) body.push(c);
      const pad = await ev.padding();
      const data = concat(body);
      parts.push(data, pad);
      out.entries.push({ entry: ev, data, pad });
    } else if (ev.type === "global") {
      parts.push(ev.headerBytes);
    } else {
      parts.push(ev.marker);
      const t: Uint8Array[] = [];
      for await (const c of ev.trailing()) t.push(c.slice());
      out.trailing = concat(t);
      parts.push(out.trailing);
    }
  }
  out.replay = concat(parts);
  return out;
}

const parseBytes = (b: Uint8Array, limits?: TarLimits, sizes?: number[]) => parse(chunked(b, sizes), limits);

function sampleEntries(): { entry: TarWriteEntry; data?: Uint8Array }[] {
  const longDir = "d".repeat(90) + "/" + "e".repeat(60);
  return [
    { entry: { path: "etc/", kind: "dir", mode: 0o755, mtime: 1700000000 } },
    {
      entry: { path: "etc/hostname", kind: "file", mode: 0o644, uid: 1000, gid: 100, mtime: 1700000001 },
      data: te.encode("host\n"),
    },
    { entry: { path: "big", kind: "file", mtime: "1700000002.123456789" }, data: gen(70000, "big") },
    { entry: { path: "s64", kind: "file" }, data: gen(64, "s64") },
    { entry: { path: "s512", kind: "file" }, data: gen(512, "s512") },
    { entry: { path: "empty", kind: "file" }, data: new Uint8Array(0) },
    { entry: { path: `${longDir}/name`, kind: "file" }, data: te.encode("prefix split") },
    { entry: { path: "p/" + "x".repeat(120) + "/" + "y".repeat(150), kind: "file" }, data: te.encode("pax path") },
    { entry: { path: "ünïcödé", kind: "file", uname: "jörg" }, data: te.encode("u") },
    { entry: { path: "link", kind: "symlink", linkTarget: "etc/hostname" } },
    { entry: { path: "longlink", kind: "symlink", linkTarget: "/" + "t".repeat(200) } },
    { entry: { path: "hard", kind: "hardlink", linkTarget: "etc/hostname" } },
    { entry: { path: "dev/null", kind: "char", devMajor: 1, devMinor: 3, mode: 0o666 } },
    { entry: { path: "dev/sda", kind: "block", devMajor: 8, devMinor: 0 } },
    { entry: { path: "fifo", kind: "fifo" } },
    { entry: { path: "biguid", kind: "file", uid: 4000000000, gid: 3000000 }, data: new Uint8Array(0) },
    {
      entry: {
        path: "xattrs",
        kind: "file",
        xattrs: { "security.capability": new Uint8Array([1, 0, 0, 2, 0, 0xff, 0x0a, 0x3d]), "user.a": "v" },
      },
      data: new Uint8Array(0),
    },
  ];
}

Deno.test("tar: writer/reader round trip keeps every field and every byte", async () => {
  const items = sampleEntries();
  const tar = buildTar(items, { trailing: new Uint8Array(3 * BLOCK) });
  // Same bytes from the streaming writer.
  const streamed = concat(await Array.fromAsync(writeTar(items, { trailing: new Uint8Array(3 * BLOCK) })));
  assert.deepEqual(streamed, tar);
  for (const sizes of [[tar.length], [1], [511, 513, 7], [BLOCK]]) {
    const p = await parseBytes(tar, undefined, sizes);
    assert.deepEqual(p.replay, tar, `replay with chunk sizes ${sizes}`);
    assert.equal(p.entries.length, items.length);
    assert.equal(p.trailing.length, 3 * BLOCK);
    for (let i = 0; i < items.length; i++) {
      const { entry: w, data } = items[i];
      const { entry: r, data: rd, pad } = p.entries[i];
      assert.equal(r.path, w.path);
      assert.equal(r.kind, w.kind);
      assert.deepEqual(rd, data ?? new Uint8Array(0));
      assert.equal(pad.length, paddingOf(rd.length));
      assert.equal(r.mode, w.mode ?? (w.kind === "dir" ? 0o755 : w.kind === "symlink" ? 0o777 : 0o644));
      assert.equal(r.uid, w.uid ?? 0);
      assert.equal(r.gid, w.gid ?? 0);
      assert.equal(r.linkTarget, w.linkTarget ?? null);
      if (w.devMajor !== undefined) assert.deepEqual([r.devMajor, r.devMinor], [w.devMajor, w.devMinor]);
      if (typeof w.mtime === "string") {
        assert.deepEqual(r.mtime, { sec: 1700000002, nsec: 123456789, pax: "1700000002.123456789" });
      } else {
        assert.deepEqual(r.mtime, { sec: w.mtime ?? 0, nsec: 0, pax: null });
      }
      if (w.uname) assert.equal(new TextDecoder().decode(r.uname), w.uname);
      const wx = Object.entries(w.xattrs ?? {}).map(([k, v]) => [k, typeof v === "string" ? te.encode(v) : v]);
      assert.deepEqual([...r.xattrs].map(([k, v]) => [k, v.slice()]), wx);
    }
    // Offsets point at the archive bytes.
    const e = p.entries[2].entry;
    assert.deepEqual(tar.subarray(e.offset, e.offset + e.headerBytes.length), e.headerBytes);
    assert.deepEqual(tar.subarray(e.dataOffset, e.dataOffset + e.size), p.entries[2].data);
  }
});

Deno.test("tar: unread bodies are skipped, bytes() reads small ones", async () => {
  const items = sampleEntries();
  const tar = buildTar(items);
  const paths: string[] = [];
  for await (const ev of readTar(chunked(tar, [1000]))) {
    if (ev.type !== "entry") continue;
    paths.push(ev.path);
    if (ev.path === "etc/hostname") assert.deepEqual(await ev.bytes(), te.encode("host\n"));
    if (ev.path === "big") await assert.rejects(ev.bytes(100), /too large/);
  }
  assert.deepEqual(paths, items.map((i) => i.entry.path));
});

Deno.test("tar: every byte after the end-of-archive marker is kept, even garbage", async () => {
  const garbage = concat([new Uint8Array(BLOCK), gen(777, "junk"), new Uint8Array(5)]);
  const tar = buildTar([{ entry: { path: "a", kind: "file" }, data: te.encode("a") }], { trailing: garbage });
  for (const sizes of [[tar.length], [100], [1537]]) {
    const p = await parseBytes(tar, undefined, sizes);
    assert.deepEqual(p.trailing, garbage);
    assert.deepEqual(p.replay, tar);
    const end = p.events.at(-1)!;
    assert.equal(end.type, "end");
    if (end.type === "end") assert.equal(end.offset, 1024);
  }
});

Deno.test("tar: clean EOF at a header boundary is an end without marker", async () => {
  const tar = buildTar([{ entry: { path: "a", kind: "file" }, data: te.encode("a") }]).subarray(0, 1024);
  const p = await parseBytes(tar);
  const end = p.events.at(-1)!;
  assert.ok(end.type === "end" && end.marker.length === 0);
  assert.deepEqual(p.replay, tar);
  // Empty input too.
  assert.equal((await parseBytes(new Uint8Array(0))).events[0].type, "end");
});

Deno.test("tar: global PAX headers are reported and not applied", async () => {
  const data = concat([paxRecord("path", "global-path"), paxRecord("uid", "77")]);
  const gh = new Uint8Array(BLOCK);
  gh.set(encodeHeader({ path: "pax_global_header", kind: "file", size: data.length }).subarray(0, BLOCK));
  gh[156] = "g".charCodeAt(0);
  setChecksum(gh);
  const body = buildTar([{ entry: { path: "a", kind: "file" }, data: te.encode("x") }]);
  const tar = concat([gh, data, new Uint8Array(paddingOf(data.length)), body]);
  const p = await parseBytes(tar);
  assert.equal(p.events[0].type, "global");
  if (p.events[0].type === "global") {
    assert.deepEqual(p.events[0].records.map((r) => r.key), ["path", "uid"]);
  }
  assert.equal(p.entries[0].entry.path, "a");
  assert.equal(p.entries[0].entry.uid, 0);
  assert.deepEqual(p.replay, tar);
});

/** An extension header block of `typeflag` carrying `data`, with its padding. */
function extensionHeader(typeflag: string, data: Uint8Array): Uint8Array {
  const h = new Uint8Array(BLOCK);
  h.set(encodeHeader({ path: "././@LongLink", kind: "file", size: data.length }).subarray(0, BLOCK));
  h[156] = typeflag.charCodeAt(0);
  setChecksum(h);
  return concat([h, data, new Uint8Array(paddingOf(data.length))]);
}

Deno.test("tar: extension headers survive a source that overwrites its one buffer on every read", async () => {
  const longName = "n/" + "l".repeat(300);
  const extensions = concat([
    extensionHeader("x", concat([paxRecord("uid", "5"), paxRecord("mtime", "1.5")])),
    // A global header between an entry's extension headers belongs to that entry's header bytes.
    extensionHeader("g", paxRecord("path", "ignored")),
    extensionHeader("L", te.encode(longName + "\0")),
  ]);
  const entries = [
    { entry: { path: "short", kind: "file" as const }, data: te.encode("hi") },
    { entry: { path: "plain", kind: "file" as const }, data: te.encode("no extensions") },
  ];
  const tar = concat([extensions, buildTar(entries)]);
  for (const size of [7, 512, 700, 1000, 1500]) {
    // Every chunk is a view of the same buffer, overwritten by the next read.
    const shared = new Uint8Array(size);
    const reusing = async function* (): AsyncGenerator<Uint8Array> {
      for (let o = 0; o < tar.length; o += size) {
        const n = Math.min(size, tar.length - o);
        shared.set(tar.subarray(o, o + n));
        yield shared.subarray(0, n);
      }
    };
    const seen: { path: string; uid: number; nsec: number; header: Uint8Array; data: string }[] = [];
    for await (const ev of readTar(reusing())) {
      if (ev.type !== "entry") continue;
      const body: string[] = [];
      for await (const c of ev.body()) body.push(new TextDecoder().decode(c));
      await ev.padding();
      seen.push({ path: ev.path, uid: ev.uid, nsec: ev.mtime.nsec, header: ev.headerBytes, data: body.join("") });
    }
    assert.equal(seen.length, 2, `chunks of ${size}`);
    assert.deepEqual(
      { ...seen[0], header: undefined },
      { path: longName, uid: 5, nsec: 500000000, header: undefined, data: "hi" },
      `chunks of ${size}`,
    );
    assert.deepEqual(seen[0].header, tar.subarray(0, extensions.length + BLOCK), `chunks of ${size}`);
    const second = extensions.length + 2 * BLOCK;
    assert.deepEqual(seen[1].header, tar.subarray(second, second + BLOCK), `chunks of ${size}`);
    assert.equal(seen[1].data, "no extensions");
  }
});

Deno.test("tar: LIBARCHIVE.xattr is ignored, SCHILY.xattr binary kept, later duplicate wins", async () => {
  const tar = buildTar([{
    entry: {
      path: "f",
      kind: "file",
      pax: { "LIBARCHIVE.xattr.user.lib": "dmFsdWU=", "SCHILY.xattr.user.dup": new Uint8Array([0, 1, 2]) },
      xattrs: { "user.dup": "first" },
    },
    data: new Uint8Array(0),
  }]);
  const [{ entry }] = (await parseBytes(tar)).entries;
  assert.deepEqual([...entry.xattrs.keys()], ["user.dup"]);
  assert.deepEqual(entry.xattrs.get("user.dup")!.slice(), new Uint8Array([0, 1, 2]));
});

Deno.test("tar: PAX mtime fractions become nanoseconds like composefs", async () => {
  const cases: [string, number, number][] = [
    ["5.", 5, 0],
    ["5.5", 5, 500000000],
    ["1700000000.1234567891234", 1700000000, 123456789],
    ["7.000000001", 7, 1],
    ["9.x", 9, 0],
  ];
  for (const [s, sec, nsec] of cases) {
    const tar = buildTar([{ entry: { path: "f", kind: "file", mtime: s }, data: new Uint8Array(0) }]);
    const [{ entry }] = (await parseBytes(tar)).entries;
    assert.deepEqual(entry.mtime, { sec, nsec, pax: s }, s);
  }
});

Deno.test("tar: V7 header with typeflag x is an ordinary entry", async () => {
  const data = paxRecord("path", "ignored");
  const h = encodeHeader({ path: "v7x", kind: "file", size: data.length });
  h.fill(0, 257, 265); // no magic → V7
  h[156] = "x".charCodeAt(0);
  setChecksum(h);
  const tar = concat([h, data, new Uint8Array(paddingOf(data.length)), new Uint8Array(1024)]);
  const p = await parseBytes(tar);
  assert.equal(p.entries[0].entry.kind, "other");
  assert.equal(p.entries[0].entry.typeflag, "x");
  assert.equal(p.entries[0].entry.path, "v7x");
  assert.deepEqual(p.entries[0].data, data);
});

async function rejects(tar: Uint8Array, re: RegExp, limits?: TarLimits) {
  await assert.rejects(parseBytes(tar, limits), re);
}

function withHeader(e: TarWriteEntry, patch: (h: Uint8Array) => void, data = new Uint8Array(0)): Uint8Array {
  const h = encodeHeader(e);
  const main = h.subarray(h.length - BLOCK);
  patch(main);
  setChecksum(main);
  return concat([h, data, new Uint8Array(paddingOf(data.length)), new Uint8Array(1024)]);
}

Deno.test("tar: hostile and malformed archives are rejected", async (t) => {
  const ok = buildTar([{ entry: { path: "a", kind: "file" }, data: gen(1000, "a") }]);
  await t.step("bad checksum", async () => {
    const bad = ok.slice();
    bad[0] ^= 1;
    await rejects(bad, /invalid tar header checksum at offset 0/);
  });
  await t.step("truncated body, header, marker", async () => {
    await rejects(ok.subarray(0, 700), /reading the content of "a": unexpected end of archive/);
    await rejects(ok.subarray(0, 100), /unexpected end of archive in a header/);
    await rejects(ok.subarray(0, ok.length - 512), /after one zero block/);
  });
  await t.step("stray zero block", async () => {
    const two = buildTar([{ entry: { path: "a", kind: "file" }, data: new Uint8Array(0) }]);
    await rejects(concat([new Uint8Array(BLOCK), two]), /stray zero block/);
  });
  await t.step("huge PAX header beyond the cap", async () => {
    const tar = buildTar([{ entry: { path: "a", kind: "file", pax: { comment: "c".repeat(5000) } } }]);
    await rejects(tar, /extension header too large/, { maxExtensionSize: 4096 });
    assert.equal((await parseBytes(tar, { maxExtensionSize: 8192 })).entries.length, 1);
    // The default cap (1 MiB) applies to the declared size before anything is read.
    const h = encodeHeader({ path: "x", kind: "file", size: 2 << 20 });
    h[156] = "x".charCodeAt(0);
    setChecksum(h);
    await rejects(h, /extension header too large/);
  });
  await t.step("huge GNU long name", async () => {
    const h = encodeHeader({ path: "././@LongLink", kind: "file", size: 3 << 20 });
    h[156] = "L".charCodeAt(0);
    setChecksum(h);
    await rejects(h, /extension header too large/);
  });
  await t.step("too many extension headers", async () => {
    const parts: Uint8Array[] = [];
    for (let i = 0; i < 17; i++) {
      const data = te.encode(`name${i}\0`);
      const h = encodeHeader({ path: "././@LongLink", kind: "file", size: data.length });
      h[156] = "L".charCodeAt(0);
      setChecksum(h);
      parts.push(h, data, new Uint8Array(paddingOf(data.length)));
    }
    await rejects(concat(parts), /duplicate GNU long name|too many/);
  });
  await t.step("duplicate PAX header", async () => {
    const x = encodeHeader({ path: "a", kind: "file", pax: { uid: "1" } });
    const pax = x.subarray(0, x.length - BLOCK);
    await rejects(concat([pax, pax, ok]), /duplicate PAX header/);
  });
  await t.step("GNU sparse S and PAX GNU.sparse", async () => {
    await rejects(withHeader({ path: "s", kind: "file" }, (h) => (h[156] = "S".charCodeAt(0))), /sparse/);
    await rejects(buildTar([{ entry: { path: "s", kind: "file", pax: { "GNU.sparse.major": "1" } } }]), /sparse/);
  });
  await t.step("malformed PAX numbers and records", async () => {
    for (const [k, v] of [["uid", "-1"], ["gid", "12x"], ["size", ""], ["mtime", "-5.1"], ["mtime", ".5"]]) {
      await rejects(buildTar([{ entry: { path: "a", kind: "file", pax: { [k]: v } } }]), /invalid PAX/);
    }
    const x = encodeHeader({ path: "a", kind: "file", pax: { comment: "abc" } });
    const broken = x.slice();
    broken[BLOCK] = "9".charCodeAt(0); // record length no longer matches
    setChecksum(broken.subarray(0, BLOCK));
    await rejects(concat([broken, new Uint8Array(1024)]), /malformed PAX/);
  });
  await t.step("header-only types with a size", async () => {
    for (const tf of ["1", "2", "3", "4", "5", "6"]) {
      await rejects(
        withHeader({ path: "h", kind: "file", size: 10 }, (h) => (h[156] = tf.charCodeAt(0)), new Uint8Array(10)),
        /non-zero size/,
      );
    }
    // A PAX size makes a directory non-empty too.
    await rejects(buildTar([{ entry: { path: "d", kind: "dir", pax: { size: "1" } } }]), /non-zero size/);
  });
  await t.step("invalid octal in a numeric field", async () => {
    await rejects(withHeader({ path: "a", kind: "file" }, (h) => (h[110] = "9".charCodeAt(0))), /invalid octal/);
  });
  await t.step("empty path", async () => {
    await rejects(withHeader({ path: "a", kind: "file" }, (h) => h.fill(0, 0, 100)), /empty path/);
  });
  await t.step("orphan extension header at the end", async () => {
    const x = encodeHeader({ path: "a", kind: "file", pax: { uid: "1" } });
    await rejects(concat([x.subarray(0, x.length - BLOCK), new Uint8Array(1024)]), /without an entry/);
    await rejects(x.subarray(0, x.length - BLOCK), /after extension headers/);
  });
});

Deno.test("tar: NUL and .. in names are reported and rejected by normalizeTarPath", async () => {
  const tar = buildTar([
    { entry: { path: "a", kind: "file", pax: { path: "evil\0name" } }, data: new Uint8Array(0) },
    { entry: { path: "../../etc/passwd", kind: "file" }, data: new Uint8Array(0) },
  ]);
  const p = await parseBytes(tar);
  assert.deepEqual(p.entries[0].entry.pathBytes.slice(), te.encode("evil\0name"));
  assert.equal(p.entries[1].entry.path, "../../etc/passwd");
  assert.throws(() => normalizeTarPath(p.entries[0].entry.pathBytes), /NUL/);
  assert.throws(() => normalizeTarPath(p.entries[1].entry.pathBytes), /"\.\."/);
  assert.deepEqual(normalizeTarPath("./etc//x/"), ["etc", "x"]);
  assert.deepEqual(normalizeTarPath("/"), []);
  assert.deepEqual(normalizeTarPath("./"), []);
  assert.throws(() => normalizeTarPath(new Uint8Array([0xff, 0x2f])), /UTF-8/);
});

async function sh(cmd: string, args: string[], cwd?: string): Promise<string> {
  const r = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
  return new TextDecoder().decode(r.stdout);
}

/** A tree with every entry kind GNU tar writes, long and non-ASCII names, binary xattrs, ns mtimes. */
async function makeTree(root: string): Promise<void> {
  const d = `${root}/dir`;
  const long = `${d}/${"a".repeat(120)}/${"b".repeat(120)}`;
  await Deno.mkdir(long, { recursive: true });
  await Deno.mkdir(`${d}/emptydir`);
  await Deno.writeTextFile(`${d}/f`, "hi\n");
  await Deno.writeFile(`${d}/big`, gen(100000, "big"));
  await Deno.writeFile(`${long}/${"c".repeat(100)}`, gen(513, "long"));
  await Deno.writeTextFile(`${d}/ünïcödé`, "u");
  await Deno.symlink("f", `${d}/sym`);
  await Deno.symlink("/" + "t".repeat(150), `${d}/longsym`);
  await Deno.link(`${d}/f`, `${d}/hard`);
  await sh("mkfifo", [`${d}/fifo`]);
  await sh("setfattr", ["-n", "user.bin", "-v", "0x00ff0a3d", `${d}/f`]);
  await sh("setfattr", ["-n", "user.txt", "-v", "hello", `${d}/big`]);
  await sh("touch", ["-h", "-d", "@1700000000.123456789", `${d}/f`, `${d}/sym`, `${d}/big`]);
}

interface FsEntry {
  kind: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: string;
  link: string;
}

/** `find -printf` as the oracle for each path's metadata. */
async function findTree(root: string): Promise<Map<string, FsEntry>> {
  const out = await sh("find", ["dir", "-printf", "%p\\0%y\\0%m\\0%U\\0%G\\0%s\\0%T@\\0%l\\0"], root);
  const f = out.split("\0");
  const m = new Map<string, FsEntry>();
  const kinds: Record<string, string> = { f: "file", d: "dir", l: "symlink", p: "fifo" };
  for (let i = 0; i + 8 <= f.length; i += 8) {
    m.set(f[i], {
      kind: kinds[f[i + 1]],
      mode: parseInt(f[i + 2], 8),
      uid: +f[i + 3],
      gid: +f[i + 4],
      size: +f[i + 5],
      mtime: f[i + 6],
      link: f[i + 7],
    });
  }
  return m;
}

async function xattrsOf(path: string): Promise<Map<string, string>> {
  const out = await sh("getfattr", ["-h", "--absolute-names", "-d", "-e", "hex", "-m", "-", path]);
  const m = new Map<string, string>();
  for (const line of out.split("\n")) {
    const eq = line.indexOf("=0x");
    if (eq > 0) m.set(line.slice(0, eq), line.slice(eq + 3));
  }
  return m;
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

for (const format of ["posix", "gnu"]) {
  Deno.test(`tar: GNU tar --format=${format} archive matches the filesystem field by field`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "bootcfs-tar-" });
    try {
      const src = `${dir}/src`;
      await Deno.mkdir(src);
      await makeTree(src);
      await sh("tar", [
        `--format=${format}`,
        "--xattrs",
        "--xattrs-include=*",
        "-cf",
        `${dir}/t.tar`,
        "-C",
        src,
        "dir",
      ]);
      const tar = await Deno.readFile(`${dir}/t.tar`);
      const p = await parseBytes(tar, undefined, [65536]);
      assert.deepEqual(p.replay, tar, "every byte, including GNU record padding, comes back");
      assert.ok(p.trailing.length > 0 && tar.length % 10240 === 0);
      const fsTree = await findTree(src);
      const seen = new Set<string>();
      let hardlinks = 0;
      for (const { entry: e, data } of p.entries) {
        const path = e.path.replace(/\/$/, "");
        const want = fsTree.get(path);
        assert.ok(want, `unexpected entry ${path}`);
        seen.add(path);
        if (e.kind === "hardlink") {
          hardlinks++;
          assert.ok(["dir/f", "dir/hard"].includes(e.linkTarget!) && e.linkTarget !== path);
          continue;
        }
        assert.equal(e.kind, want.kind, path);
        assert.equal(e.mode & 0o7777, want.mode, path);
        assert.equal(e.uid, want.uid, path);
        assert.equal(e.gid, want.gid, path);
        assert.equal(e.mtime.sec, Math.trunc(Number(want.mtime.split(".")[0])), path);
        if (format === "posix") {
          assert.equal(e.mtime.nsec, Number(want.mtime.split(".")[1].slice(0, 9).padEnd(9, "0")), path);
        }
        if (e.kind === "file") {
          assert.equal(e.size, want.size, path);
          assert.deepEqual(data, await Deno.readFile(`${src}/${path}`), path);
        }
        if (e.kind === "symlink") assert.equal(e.linkTarget, want.link, path);
        const wantX = await xattrsOf(`${src}/${path}`);
        assert.deepEqual(new Map([...e.xattrs].map(([k, v]) => [k, hex(v)])), wantX, path);
      }
      assert.equal(hardlinks, 1);
      assert.deepEqual([...seen].sort(), [...fsTree.keys()].sort());
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("tar: sparse archives written by GNU tar are rejected (GNU S and PAX GNU.sparse)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bootcfs-tar-" });
  try {
    const f = await Deno.open(`${dir}/sparse`, { write: true, create: true });
    await f.truncate(4 << 20);
    await f.seek(1 << 20, Deno.SeekMode.Start);
    await f.write(new Uint8Array([1]));
    f.close();
    for (const format of ["gnu", "posix"]) {
      await sh("tar", [`--format=${format}`, "--sparse", "-cf", `${dir}/${format}.tar`, "-C", dir, "sparse"]);
      await assert.rejects(
        parseBytes(await Deno.readFile(`${dir}/${format}.tar`)),
        /sparse tar entries are not supported/,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tar: archives from our writer extract with GNU tar identically", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bootcfs-tar-" });
  try {
    const items = sampleEntries().filter((i) => i.entry.kind !== "char" && i.entry.kind !== "block");
    await Deno.writeFile(`${dir}/w.tar`, buildTar(items));
    // GNU tar's own listing: names, link targets and sizes must be what we wrote.
    const list = await sh("tar", ["--xattrs", "--full-time", "--numeric-owner", "-tvf", `${dir}/w.tar`]);
    for (const { entry, data } of items) {
      const line = list.split("\n").find((l) => l.includes(` ${entry.path}`));
      assert.ok(line, `tar -tv lists ${entry.path}`);
      if (entry.kind === "file") assert.match(line, new RegExp(` ${data!.length} `));
      if (entry.uid) assert.match(line, new RegExp(` ${entry.uid}/${entry.gid ?? 0} `));
    }
    assert.match(list, / 1700000002\.123456789 | 2023-11-14 22:13:22\.123456789 /);
    await Deno.mkdir(`${dir}/x`);
    await sh("tar", ["--xattrs", "--xattrs-include=user.*", "-xf", `${dir}/w.tar`, "-C", `${dir}/x`]);
    for (const { entry, data } of items) {
      if (entry.kind === "file") assert.deepEqual(await Deno.readFile(`${dir}/x/${entry.path}`), data, entry.path);
    }
    assert.equal((await xattrsOf(`${dir}/x/xattrs`)).get("user.a"), "76");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tar: segments follow composefs split_async (external iff regular file > 64 bytes)", async () => {
  const garbage = gen(700, "trail");
  const items = [
    { entry: { path: "d/", kind: "dir" as const } },
    { entry: { path: "d/s64", kind: "file" as const }, data: gen(64, "s64") },
    { entry: { path: "d/s65", kind: "file" as const }, data: gen(65, "s65") },
    { entry: { path: "d/empty", kind: "file" as const }, data: new Uint8Array(0) },
    { entry: { path: "d/big", kind: "file" as const, mtime: "1.5" }, data: gen(70000, "big") },
    { entry: { path: "d/link", kind: "symlink" as const, linkTarget: "s65" } },
  ];
  const tar = buildTar(items, { trailing: garbage });
  const parts: Uint8Array[] = [];
  const external: [string, number][] = [];
  for await (const s of tarSegments(chunked(tar, [4096, 777]))) {
    if (s.type === "inline") parts.push(s.bytes);
    else {
      external.push([s.entry.path, s.size]);
      const body: Uint8Array[] = [];
      for await (const c of s.chunks) body.push(c);
      assert.equal(concat(body).length, s.size);
      parts.push(...body);
    }
  }
  assert.deepEqual(external, [["d/s65", 65], ["d/big", 70000]]);
  assert.deepEqual(concat(parts), tar);
});

/**
 * The `alpha` layer of composefs-formats.md §3.7 (built by the Rust tar crate; its sha256 is the
 * diff_id pinned upstream): checksum as 7 digits + NUL, device fields NUL. Upstream splits it into
 * inline 512 header, external 1000 zeros, inline 24 + 1024 zeros.
 */
Deno.test("tar: the composefs alpha layer vector parses and segments like upstream", async () => {
  const h = new Uint8Array(BLOCK);
  const put = (off: number, s: string) => h.set(te.encode(s), off);
  put(0, "alpha");
  put(100, "0000700\0");
  put(108, "0000000\0");
  put(116, "0000000\0");
  put(124, "00000001750\0");
  put(136, "00000000000\0");
  put(156, "0");
  put(257, "ustar\x0000");
  put(148, "        ");
  put(148, h.reduce((a, b) => a + b, 0).toString(8).padStart(7, "0") + "\0");
  const tar = concat([h, new Uint8Array(1000 + 24 + 1024)]);
  assert.equal(sha256(tar), "sha256:757d6903198804b6ed96421a93a9973f5facc0e445a2a6c61cb0129eb67026e2");
  const p = await parseBytes(tar);
  const e = p.entries[0].entry;
  assert.deepEqual([e.path, e.kind, e.mode, e.size, e.uid, e.devMajor, e.devMinor], [
    "alpha",
    "file",
    0o700,
    1000,
    0,
    null,
    null,
  ]);
  const segs: [string, number][] = [];
  for await (const s of tarSegments(chunked(tar))) {
    if (s.type === "external") { for await (const _ of s.chunks) { /* consumed */ } }
    segs.push([s.type, s.type === "inline" ? s.bytes.length : s.size]);
  }
  assert.deepEqual(segs, [["inline", 512], ["external", 1000], ["inline", 24], ["inline", 1024]]);
});

Deno.test("tar: a truncated file is an error even when bodies are skipped by seeking", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bootcfs-tar-" });
  try {
    const tar = buildTar([{ entry: { path: "a", kind: "file" }, data: gen(4096, "a") }]);
    await Deno.writeFile(`${dir}/t.tar`, tar.subarray(0, 2048));
    using f = await Deno.open(`${dir}/t.tar`);
    await assert.rejects(async () => {
      for await (const _ of readTar(fileSource(f))) { /* skip bodies */ }
    }, /unexpected end of file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tar: an external segment left unread is an error, not a truncated object", async () => {
  const tar = buildTar([{ entry: { path: "big", kind: "file" }, data: gen(1000, "big") }]);
  await assert.rejects(async () => {
    for await (const _ of tarSegments(chunked(tar))) { /* never reads s.chunks */ }
  }, /external content of "big" was not read whole/);
});
