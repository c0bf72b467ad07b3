// Splitstream writer/reader against the worked examples of composefs-formats.md §3.7 / §7.3.
// All §3.7 vectors are small enough that Debian's libzstd 1.5.4 produces the same frames as the
// libzstd 1.5.7 composefs-rs bundles (§3.5), so they are checked byte for byte here.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fromHex, fsverityDigest, type HashAlg, toHex } from "../../lib/fsverity/digest.ts";
import { contentType, contentTypeName, SplitStream, SplitStreamWriter } from "../../lib/splitstream/mod.ts";
import { type ObjectId, objectIdFromBytes } from "../../lib/repository/objectid.ts";
import { zstdCompress } from "../../ffi/zstd.ts";

const te = new TextEncoder();
const verity = (b: Uint8Array, alg: HashAlg = "sha256") => objectIdFromBytes(fsverityDigest(b, alg));

const HELLO_HEX = "53706c697453747265616d00000001 0c2000000000000000 7000000000000000" +
  "7000000000000000 7000000000000000 7000000000000000 7000000000000000" +
  "7900000000000000 8f00000000000000 7000000000000000 7900000000000000" +
  "0000000000000000 0500000000000000 28b52ffd2000010000 28b52ffd0058690000 fbffffffffffffff 68656c6c6f";
const ALPHA_HEX =
  "53706c697453747265616d000000010c2000000000000000700000000000000070000000000000007000000000000000700000000000000090000000000000009900000000000000ed00000000000000900000000000000099000000000000006f63696c61796572000a000000000000f6fa43bbc0a7908e2ef77438244159e9dec289dfc4c49d229237f9797a6a9b7928b52ffd200001000028b52ffd00585d0200440200feff616c7068610030303030373030303137353637353100307573746172003030e8fb0e00144105c080186e2898200624e7a80000831b3463660d45c0cd6280df95d62c98d28221";

/** A ustar header as the Rust `tar` crate writes it in the upstream test (§3.7). */
function ustarHeader(name: string, size: number): Uint8Array {
  const h = new Uint8Array(512);
  const put = (off: number, s: string) => h.set(te.encode(s), off);
  put(0, name);
  put(100, "0000700\0");
  put(108, "0000000\0");
  put(116, "0000000\0");
  put(124, size.toString(8).padStart(11, "0") + "\0");
  put(136, "00000000000\0");
  put(156, "0");
  put(257, "ustar\0" + "00");
  h.fill(0x20, 148, 156);
  const sum = h.reduce((a, b) => a + b, 0);
  put(148, sum.toString(8).padStart(7, "0") + "\0");
  return h;
}

function layer(name: string, size: number): { tar: Uint8Array; stream: Uint8Array; fileId: ObjectId } {
  const header = ustarHeader(name, size);
  const body = new Uint8Array(size);
  const pad = new Uint8Array((512 - (size % 512)) % 512);
  const end = new Uint8Array(1024);
  const w = new SplitStreamWriter("sha256", contentType("ocilayer"));
  w.writeInline(header);
  const fileId = verity(body);
  w.addExternal(fileId, size);
  w.writeInline(pad);
  w.writeInline(end);
  const tar = new Uint8Array([...header, ...body, ...pad, ...end]);
  return { tar, stream: w.finish(), fileId };
}

function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

Deno.test("inline-only 'hello' stream reproduces §3.7 byte for byte", () => {
  const w = new SplitStreamWriter("sha256", 0n);
  w.writeInline(te.encode("hello"));
  const file = w.finish();
  assert.equal(toHex(file), HELLO_HEX.replaceAll(" ", ""));
  assert.equal(file.length, 143);
  assert.equal(verity(file), "fbf48665a4925a6b9a6d6d606228574b6db1ce2002db657c21647e948d3e2c91");
});

Deno.test("alpha/beta/gamma layers and the config chain reproduce the pinned 4839518d…", () => {
  const layers = [["alpha", 1000], ["beta", 2000], ["gamma", 3000]] as const;
  const diffIds = [
    "757d6903198804b6ed96421a93a9973f5facc0e445a2a6c61cb0129eb67026e2",
    "77dd145166ef191089dabd4d2c52d32143850a3c81a074fedf48dca360e2dcb9",
    "9b57f0e91c403b650e9391fd5e4154cac5dc1469acc0f3312e6149aa34f160ef",
  ];
  const streamIds = [
    "61c07629b8a41273f190744a8545c132e6b784dcb2235bb31ade307a83e092ff",
    "ce472620ab69da46e385b0936865ef22f940e6bf55a083d3be37b1003795e221",
    "99ce11df4bb808a1e80ce69425dae527b64aa7a270bf99c4a6e24d66be270f3f",
  ];
  const built = layers.map(([n, s]) => layer(n, s));
  assert.equal(toHex(built[0].stream), ALPHA_HEX);
  assert.equal(built[0].stream.length, 237);
  for (let i = 0; i < 3; i++) {
    assert.equal(sha256(built[i].tar), diffIds[i]);
    assert.equal(verity(built[i].stream), streamIds[i]);
  }
  const json = te.encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    rootfs: { type: "layers", diff_ids: diffIds.map((d) => `sha256:${d}`) },
  }));
  const w = new SplitStreamWriter("sha256", contentType("ociconfg"));
  for (let i = 0; i < 3; i++) w.addNamedStreamRef(`sha256:${diffIds[i]}`, streamIds[i] as ObjectId);
  w.addExternal(verity(json), json.length);
  const config = w.finish();
  assert.equal(verity(config), "4839518dea22749f8ff233e7f7baec65f23dd5336462f46ad6884769af84bf95");
});

Deno.test("reader: alpha layer chunks, refs, content type and size", () => {
  const s = SplitStream.parse(fromHex(ALPHA_HEX), "sha256");
  assert.equal(contentTypeName(s.contentType), "ocilayer");
  assert.equal(s.streamSize, 512 + 1000 + 24 + 1024);
  assert.deepEqual(s.objectRefs, [verity(new Uint8Array(1000))]);
  assert.equal(s.streamRefs.length, 0);
  assert.equal(s.legacyHeader, false);
  const chunks = [...s.chunks()];
  assert.deepEqual(chunks.map((c) => c.kind), ["inline", "external", "inline"]);
  assert.deepEqual((chunks[0] as { bytes: Uint8Array }).bytes, ustarHeader("alpha", 1000));
  assert.deepEqual((chunks[2] as { bytes: Uint8Array }).bytes, new Uint8Array(1048));
});

/** Rewrites a current header into the legacy (pre-repr(C)) field order of §3.1. */
function toLegacy(file: Uint8Array): Uint8Array {
  const out = file.slice();
  const h = file.subarray(0, 32);
  out.set(h.subarray(16, 32), 0); // info range
  out.set(h.subarray(12, 14), 16); // flags
  out.set(h.subarray(0, 11), 18); // magic
  out[29] = h[11];
  out[30] = h[14];
  out[31] = h[15];
  return out;
}

Deno.test("reader: the legacy header layout reads the same", () => {
  const legacy = toLegacy(fromHex(ALPHA_HEX));
  assert.notDeepEqual(legacy.subarray(0, 11), te.encode("SplitStream"));
  const s = SplitStream.parse(legacy, "sha256");
  assert.equal(s.legacyHeader, true);
  assert.equal(s.streamSize, 2560);
  assert.equal([...s.chunks()].length, 3);
});

Deno.test("writer: inline writes coalesce, external rule, named refs sorted by UTF-8 bytes", () => {
  const alg = "sha512";
  const a = verity(te.encode("a".repeat(100)), alg), b = verity(te.encode("b".repeat(100)), alg);
  const w = new SplitStreamWriter(alg, contentType("oci_blob"));
  w.writeInline(te.encode("one"));
  w.writeInline(te.encode("two"));
  w.addExternal(b, 100);
  w.addExternal(a, 100);
  w.addExternal(b, 100);
  w.writeInline(te.encode("three"));
  for (const n of ["zeta", "é", "Alpha", "alpha:with:colons"]) w.addNamedStreamRef(n, n === "zeta" ? b : a);
  w.addNamedStreamRef("zeta", a); // re-adding a name repoints it
  const s = SplitStream.parse(w.finish(), alg);
  assert.deepEqual(s.objectRefs, [b, a]);
  assert.deepEqual(s.streamRefs, [b, a]); // insertion order, deduplicated
  assert.deepEqual([...s.namedRefs.keys()], ["Alpha", "alpha:with:colons", "zeta", "é"]);
  assert.equal(s.namedRefs.get("zeta"), a);
  const chunks = [...s.chunks()].map((c) => c.kind === "inline" ? new TextDecoder().decode(c.bytes) : c.id);
  assert.deepEqual(chunks, ["onetwo", b, a, b, "three"]);
  assert.equal(s.streamSize, 6 + 300 + 5);
});

function hello(): Uint8Array {
  return fromHex(HELLO_HEX.replaceAll(" ", ""));
}
function setU64(b: Uint8Array, off: number, v: number): Uint8Array {
  const c = b.slice();
  new DataView(c.buffer).setBigUint64(off, BigInt(v), true);
  return c;
}
function withStream(frameContent: Uint8Array, objectRefs = 0): Uint8Array {
  // A hand-built file: no stream refs, `objectRefs` zero IDs, empty named refs, the given stream.
  const ids = new Uint8Array(32 * objectRefs);
  const named = fromHex("28b52ffd2000010000");
  const stream = zstdCompress(frameContent);
  const file = new Uint8Array(112 + ids.length + named.length + stream.length);
  file.set(hello().subarray(0, 32));
  const v = new DataView(file.buffer);
  const o = 112 + ids.length, s = o + named.length;
  [[112, 112], [112, o], [s, file.length], [o, s]].forEach(([a, b], i) => {
    v.setBigUint64(32 + 16 * i, BigInt(a), true);
    v.setBigUint64(40 + 16 * i, BigInt(b), true);
  });
  file.set(named, o);
  file.set(stream, s);
  return file;
}
function i64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigInt64(0, BigInt(n), true);
  return b;
}

Deno.test("reader rejects malformed streams with a clear error", () => {
  const bad = hello();
  bad[0] = 0x58;
  assert.throws(() => SplitStream.parse(bad), /bad magic/);
  assert.throws(() => SplitStream.parse(hello().subarray(0, 20)), /too short/);
  const v1 = hello();
  v1[11] = 1;
  assert.throws(() => SplitStream.parse(v1), /unsupported version 1/);
  assert.throws(() => SplitStream.parse(hello(), "sha512"), /uses sha256 but the repository uses sha512/);
  assert.throws(() => SplitStream.parse(setU64(hello(), 24, 100)), /info section too short/);
  assert.throws(() => SplitStream.parse(setU64(hello(), 24, 4000)), /info range 32\.\.4000 is outside the file/);
  assert.throws(() => SplitStream.parse(setU64(hello(), 32 + 40, 9999)), /stream range 121\.\.9999 is outside/);
  assert.throws(() => SplitStream.parse(setU64(hello(), 32 + 8, 100)), /stream_refs range ends before it starts/);
  assert.throws(() => SplitStream.parse(setU64(hello(), 32 + 8, 113)), /not a multiple of 32/);
  // Out-of-range external index, truncated chunk, truncated zstd frame.
  assert.throws(() => [...SplitStream.parse(withStream(i64(1), 1)).chunks()], /refers to object 1 but there are 1/);
  assert.throws(
    () => [...SplitStream.parse(withStream(new Uint8Array([...i64(-5), 1, 2]))).chunks()],
    /inside a chunk/,
  );
  assert.throws(() => [...SplitStream.parse(withStream(new Uint8Array(3))).chunks()], /inside a chunk/);
  const cut = hello().slice(0, 140);
  assert.throws(() => [...SplitStream.parse(setU64(cut, 32 + 40, 140)).chunks()], /zstd: truncated input/);
  const garbage = hello();
  garbage[125] ^= 0xff;
  assert.throws(() => [...SplitStream.parse(garbage).chunks()], /zstd/);
  // A named ref pointing past stream_refs, and one without its NUL.
  const named = (text: string) => {
    const f = withStream(new Uint8Array([...i64(-1), 0x41]));
    const frame = zstdCompress(te.encode(text));
    const out = new Uint8Array(f.length + frame.length);
    out.set(f);
    out.set(frame, f.length);
    return setU64(setU64(out, 32 + 48, f.length), 32 + 56, out.length);
  };
  assert.throws(() => SplitStream.parse(named("0:x\0")), /out of range \(0 stream refs\)/);
  assert.throws(() => SplitStream.parse(named("x\0")), /malformed named ref/);
  assert.throws(() => SplitStream.parse(named("0:x")), /without a NUL/);
});

Deno.test("writer: the stream frame is the compression of the chunk sequence, however the pieces fall on the writer's input buffer", () => {
  // Thousands of small pieces (as a layer has), pieces straddling the writer's 128 KiB gathering
  // buffer and inline runs far larger than it: the frame must equal one streaming compression of
  // the uncompressed chunk sequence (header, inline bytes, object index...), as composefs-rs writes.
  const alg = "sha256";
  const ids = Array.from({ length: 50 }, (_, i) => verity(te.encode(`object ${i} `.repeat(20)), alg));
  const w = new SplitStreamWriter(alg, contentType("ocilayer"));
  const expected: Uint8Array[] = [];
  let run: Uint8Array[] = [];
  const endRun = () => {
    const n = run.reduce((a, b) => a + b.length, 0);
    if (n) expected.push(i64(-n), ...run);
    run = [];
  };
  let seed = 1, externals = 0;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  for (let i = 0; i < 4000; i++) {
    const r = rand(100);
    if (r < 30) {
      const id = ids[rand(ids.length)];
      w.addExternal(id, 1000);
      externals++;
      endRun();
      expected.push(i64(w.objectRefs.indexOf(id)));
    } else {
      const size = i % 500 === 7 ? 150_000 + rand(300_000) : 1 + rand(700);
      const piece = Uint8Array.from({ length: size }, (_, k) => (k * 31 + i) & 0xff);
      w.writeInline(piece);
      run.push(piece);
    }
  }
  endRun();
  const file = w.finish();
  const parsed = SplitStream.parse(file, alg);
  const all = new Uint8Array(expected.reduce((a, b) => a + b.length, 0));
  expected.reduce((o, b) => (all.set(b, o), o + b.length), 0);
  const frame = file.subarray(Number(new DataView(file.buffer).getBigUint64(64, true))); // the stream section
  assert.deepEqual(frame, zstdCompress(all));
  assert.ok(all.length > 2_000_000, `${all.length} bytes of chunk sequence`);
  assert.equal([...parsed.chunks()].filter((c) => c.kind === "external").length, externals);
});

Deno.test("reader: inline chunks larger than one decompression buffer reassemble exactly", () => {
  const big = Uint8Array.from({ length: 3_000_000 }, (_, i) => (i * 7919) % 256);
  const id = verity(te.encode("x".repeat(100)));
  const w = new SplitStreamWriter("sha256", 0n);
  w.writeInline(big.subarray(0, 1_000_000));
  w.writeInline(big.subarray(1_000_000));
  w.addExternal(id, 100);
  w.writeInline(big.subarray(0, 10));
  const chunks = [...SplitStream.parse(w.finish()).chunks()];
  assert.deepEqual(chunks.map((c) => c.kind), ["inline", "external", "inline"]);
  assert.deepEqual((chunks[0] as { bytes: Uint8Array }).bytes, big);
  assert.deepEqual((chunks[2] as { bytes: Uint8Array }).bytes, big.subarray(0, 10));
});

Deno.test("reader: transient chunks read one at a time equal the kept ones, and the buffer is reused", () => {
  // Many inline chunks of every size around the pieces zstd hands out, separated by externals (an
  // inline chunk directly after another coalesces), so batches end at every kind of boundary.
  const id = verity(te.encode("x".repeat(100)));
  const w = new SplitStreamWriter("sha256", 0n);
  for (let i = 0; i < 400; i++) {
    const n = [1, 7, 512, 4095, 70_000, 131_072, 200_001][i % 7] + i;
    w.writeInline(Uint8Array.from({ length: n }, (_, k) => (k * 31 + i) % 251));
    w.addExternal(id, 100);
  }
  const s = SplitStream.parse(w.finish());
  // Each inline chunk as its sha256, taken on receipt (what a transient reader must do).
  const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
  const keptBuffers = new Set<ArrayBufferLike>();
  const kept = [...s.chunks()].map((c) => c.kind === "inline" ? (keptBuffers.add(c.bytes.buffer), sha(c.bytes)) : c.id);
  const read: string[] = [];
  const buffers = new Set<ArrayBufferLike>();
  for (const c of s.chunks({ transient: true })) {
    if (c.kind === "inline") buffers.add(c.bytes.buffer);
    read.push(c.kind === "inline" ? sha(c.bytes) : c.id);
  }
  assert.equal(read.length, 800);
  assert.deepEqual(read, kept);
  assert.ok(
    buffers.size * 4 < keptBuffers.size,
    `${buffers.size} buffers (kept chunks: ${keptBuffers.size}) for ${kept.length} chunks: the carry is reused`,
  );
});
