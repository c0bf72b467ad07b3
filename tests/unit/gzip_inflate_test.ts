// The two gzip Inflaters (ffi/zlib.ts, ffi/isal.ts) against node:zlib and the gzip CLI as
// independent encoders: the same cases for both, since lib/oci/decompress.ts uses either.
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { IsalInflater } from "../../ffi/isal.ts";
import { GzipInflater, type Inflater } from "../../ffi/zlib.ts";
import { decompress } from "../../lib/oci/decompress.ts";
import { gen } from "../helpers/oci.ts";

const te = new TextEncoder();
const BACKENDS: [string, () => Inflater][] = [["zlib", () => new GzipInflater()], [
  "isal",
  () => new IsalInflater(),
]];

const cat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

/** `data` cut into pieces of `size` bytes. */
function pieces(data: Uint8Array, size: number): Uint8Array[] {
  const out = [];
  for (let o = 0; o < data.length; o += size) out.push(data.slice(o, o + size));
  return out;
}

/**
 * Feeds `chunks` to the inflater: the members decoded, and the input left after the last member
 * once a byte that does not start a member (0x1f) follows it. Each output buffer is overwritten
 * with junk after its bytes are taken, so a decoder reading its history from there fails.
 */
async function run(
  z: Inflater,
  chunks: Uint8Array[],
  outSize = 1 << 16,
): Promise<{ members: Uint8Array[]; rest: Uint8Array }> {
  const members: Uint8Array[] = [];
  let cur: Uint8Array[] = [];
  let inMember = true;
  let i = 0;
  const out = new Uint8Array(outSize);
  try {
    while (true) {
      if (z.availIn === 0) {
        if (i === chunks.length) {
          if (inMember) throw new Error("truncated");
          return { members, rest: new Uint8Array(0) };
        }
        z.setInput(chunks[i++]);
        continue;
      }
      if (!inMember) {
        if (z.nextByte !== 0x1f) {
          const left = chunks[i - 1].subarray(chunks[i - 1].length - z.availIn);
          return { members, rest: cat(left, ...chunks.slice(i)) };
        }
        inMember = true;
      }
      const { n, end } = await z.inflate(out);
      cur.push(out.slice(0, n));
      out.fill(0xa5);
      if (end) {
        members.push(cat(...cur));
        cur = [];
        z.reset();
        inMember = false;
      }
    }
  } finally {
    await z.free();
  }
}

/** The gzip CLI's output for a file named `name` holding `data` (a header with FNAME). */
async function gzipCli(data: Uint8Array, name = "layer.tar"): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/${name}`, data);
    const r = await new Deno.Command("gzip", { args: ["-9", "-c", `${dir}/${name}`], stdout: "piped" }).output();
    assert.equal(r.code, 0);
    return r.stdout;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const text = te.encode("bootcfs gzip layer ".repeat(1000));
const a = te.encode("hello ".repeat(100)), b = te.encode("world"), c = gen(5000, "member c");
const multi = cat(gzipSync(a), gzipSync(b), gzipSync(c, { level: 1 }));
const garbage = cat(te.encode("not gzip"), new Uint8Array(1000));

for (const [name, make] of BACKENDS) {
  Deno.test(`gzip inflate ${name}: one member from the gzip CLI (FNAME header)`, async () => {
    const r = await run(make(), [await gzipCli(text)]);
    assert.deepEqual(r.members, [text]);
    assert.equal(r.rest.length, 0);
  });

  Deno.test(`gzip inflate ${name}: multi-member, each member decoded in turn`, async () => {
    const r = await run(make(), [multi]);
    assert.deepEqual(r.members, [a, b, c]);
  });

  Deno.test(`gzip inflate ${name}: trailing garbage is left unconsumed, byte-exact`, async () => {
    for (const size of [1, 3, 7, 64, 1 << 20]) {
      const r = await run(make(), pieces(cat(multi, garbage), size));
      assert.deepEqual(r.members, [a, b, c], `input pieces of ${size}`);
      assert.deepEqual(r.rest, garbage, `input pieces of ${size}`);
    }
  });

  Deno.test(`gzip inflate ${name}: input split at every offset of a two-member stream`, async () => {
    const data = cat(gzipSync(a), gzipSync(b), garbage.subarray(0, 9));
    for (let s = 0; s <= data.length; s++) {
      const r = await run(make(), [data.subarray(0, s), data.subarray(s)], 7);
      assert.deepEqual(r.members, [a, b], `split at ${s}`);
      assert.deepEqual(r.rest, garbage.subarray(0, 9), `split at ${s}`);
    }
  });

  Deno.test(`gzip inflate ${name}: empty members, alone and between others`, async () => {
    const empty = gzipSync(new Uint8Array(0));
    assert.deepEqual((await run(make(), [empty])).members, [new Uint8Array(0)]);
    const r = await run(make(), pieces(cat(empty, gzipSync(a), empty, empty, gzipSync(b)), 5));
    assert.deepEqual(r.members, [new Uint8Array(0), a, new Uint8Array(0), new Uint8Array(0), b]);
  });

  Deno.test(`gzip inflate ${name}: 1- and 7-byte output buffers, byte-by-byte input`, async () => {
    const data = cat(await gzipCli(text), gzipSync(c));
    for (const out of [1, 7]) {
      assert.deepEqual((await run(make(), [data], out)).members, [text, c], `output of ${out}`);
    }
    assert.deepEqual((await run(make(), pieces(data, 1), 7)).members, [text, c]);
  });

  Deno.test(`gzip inflate ${name}: truncated anywhere is an error`, async () => {
    const one = gzipSync(text);
    // In the header, the deflate data, the CRC32 and the ISIZE.
    for (const cut of [1, 5, 10, 20, one.length - 8, one.length - 5, one.length - 1]) {
      await assert.rejects(run(make(), pieces(one.subarray(0, cut), 3)), /truncated/, `cut at ${cut}`);
    }
    await assert.rejects(run(make(), [multi.subarray(0, multi.length - 4)]), /truncated/);
  });

  Deno.test(`gzip inflate ${name}: corrupt deflate data and header are errors`, async () => {
    const header = gzipSync(a).subarray(0, 10);
    // BFINAL=1, BTYPE=11: a reserved block type.
    await assert.rejects(run(make(), [cat(header, new Uint8Array([0x07, 0, 0, 0]))]), /^Error: not valid gzip data: /);
    // Compression method 9 instead of deflate.
    const method = gzipSync(a);
    method[2] = 9;
    await assert.rejects(run(make(), [method]), /not valid gzip data: /);
    // Flipped bytes inside compressible data break its Huffman codes or distances.
    const bad = gzipSync(text);
    for (let o = 12; o < 40; o++) bad[o] ^= 0x5a;
    await assert.rejects(run(make(), [bad]), /not valid gzip data: /);
  });

  Deno.test(`gzip inflate ${name}: corrupt CRC32 or ISIZE in the trailer is an error`, async () => {
    for (const back of [8, 5, 4, 1]) {
      const bad = gzipSync(c);
      bad[bad.length - back] ^= 1;
      await assert.rejects(run(make(), [bad]), /not valid gzip data: /, `trailer byte -${back}`);
      // Also in a later member, after a good one.
      await assert.rejects(run(make(), [cat(gzipSync(a), bad)]), /not valid gzip data: /, `second member -${back}`);
    }
  });

  Deno.test(`gzip inflate ${name}: 24 MiB round trip vs node:zlib, levels 1 and 9`, async () => {
    const data = cat(gen(8 << 20, "random"), new Uint8Array(4 << 20), text, gen(3 << 20, "more"));
    const big = new Uint8Array(24 << 20);
    for (let o = 0; o < big.length; o += data.length) big.set(data.subarray(0, big.length - o), o);
    for (const level of [1, 9]) {
      const r = await run(make(), pieces(gzipSync(big, { level }), 1 << 20), 1 << 20);
      assert.equal(r.members.length, 1);
      assert.ok(Buffer.from(r.members[0]).equals(big), `level ${level}`);
    }
  });
}

Deno.test("gzip inflate: BOOTCFS_NO_ISAL=1 turns ISA-L off, else it is on", async () => {
  const code = `import { isalAvailable } from "${new URL("../../ffi/isal.ts", import.meta.url)}";
    console.log(isalAvailable);`;
  for (const [env, want] of [["1", "false"], ["", "true"]]) {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["eval", code],
      env: { BOOTCFS_NO_ISAL: env },
      stdout: "piped",
    }).output();
    assert.equal(new TextDecoder().decode(r.stdout).trim(), want, `BOOTCFS_NO_ISAL=${env}`);
  }
});

Deno.test("gzip inflate: decompress() through the default backend, multi-member and garbage", async () => {
  async function* src() {
    yield* pieces(cat(multi, garbage), 4096);
  }
  const got: number[] = [];
  for await (const ch of decompress(src(), "gzip")) got.push(...ch);
  assert.deepEqual(new Uint8Array(got), cat(a, b, c));
});
