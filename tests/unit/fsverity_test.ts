import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fromHex, fsverityDigest, FsVerityHasher, type HashAlg, toHex } from "../../lib/fsverity/mod.ts";
import { VECTORS } from "../helpers/paths.ts";

interface Vector {
  alg: HashAlg;
  label: string;
  make(): Uint8Array;
  digest: string;
}

/** The tables of ../shared/vectors/fsverity/README.md, made by `fsverity digest`. */
function readVectors(): Vector[] {
  const text = Deno.readTextFileSync(`${VECTORS}/fsverity/README.md`);
  const out: Vector[] = [];
  let alg: HashAlg | null = null;
  for (const line of text.split("\n")) {
    if (line.startsWith("## SHA-256")) alg = "sha256";
    else if (line.startsWith("## SHA-512")) alg = "sha512";
    else if (line.startsWith("## ")) alg = null;
    const m = line.match(/^\| (`hello world`|empty|(\d+) × 0x([0-9a-f]{2})) \| +(\d+) \| `([0-9a-f]+)`/);
    if (!alg || !m) continue;
    const [, label, n, byte, , digest] = m;
    const make = label === "`hello world`"
      ? () => new TextEncoder().encode("hello world")
      : label === "empty"
      ? () => new Uint8Array(0)
      : () => new Uint8Array(Number(n)).fill(parseInt(byte, 16));
    out.push({ alg, label, make, digest });
  }
  return out;
}

const vectors = readVectors();

Deno.test("fsverity: the vector tables were read", () => {
  assert.equal(vectors.filter((v) => v.alg === "sha256").length, 17);
  assert.equal(vectors.filter((v) => v.alg === "sha512").length, 17);
});

for (const v of vectors) {
  Deno.test(`fsverity ${v.alg}: ${v.label} matches the reference digest`, () => {
    assert.equal(toHex(fsverityDigest(v.make(), v.alg)), v.digest);
  });
}

Deno.test("fsverity: a reset hasher gives the reference digests, whatever it hashed before", () => {
  for (const alg of ["sha256", "sha512"] as const) {
    const vs = vectors.filter((v) => v.alg === alg).map((v) => ({ v, data: v.make() }));
    const h = new FsVerityHasher(alg);
    // Largest first leaves deeper tree levels behind for the small files; then the other way round.
    for (const order of [1, -1]) {
      for (const { v, data } of vs.toSorted((a, b) => order * (b.data.length - a.data.length))) {
        h.reset();
        h.update(data);
        assert.equal(toHex(h.digest()), v.digest, `${alg} ${v.label}`);
      }
    }
  }
});

Deno.test("fsverity: the digest does not depend on how the input is chunked", () => {
  const data = new Uint8Array(600_001);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
  for (const alg of ["sha256", "sha512"] as const) {
    const whole = toHex(fsverityDigest(data, alg));
    for (const chunk of [1, 1000, 4095, 4096, 4097, 65536, 1 << 20]) {
      const h = new FsVerityHasher(alg);
      for (let off = 0; off < data.length; off += chunk) h.update(data.subarray(off, off + chunk));
      assert.equal(toHex(h.digest()), whole, `${alg} chunk ${chunk}`);
    }
  }
});

Deno.test("fsverity: a one-block file is the hash of the padded block under the descriptor", () => {
  // Independent construction with node:crypto for a single block, as composefs-formats.md §2.1 describes.
  const data = new TextEncoder().encode("hello world");
  const block = new Uint8Array(4096);
  block.set(data);
  const root = createHash("sha256").update(block).digest();
  const desc = new Uint8Array(256);
  desc.set([1, 1, 12]);
  new DataView(desc.buffer).setBigUint64(8, BigInt(data.length), true);
  desc.set(root, 16);
  assert.equal(toHex(fsverityDigest(data, "sha256")), createHash("sha256").update(desc).digest("hex"));
});

Deno.test("fsverity: hex helpers round-trip and reject junk", () => {
  assert.equal(toHex(fromHex("00ffA0")), "00ffa0");
  assert.throws(() => fromHex("abc"), /not a hex string/);
  assert.throws(() => fromHex("zz"), /not a hex string/);
});
