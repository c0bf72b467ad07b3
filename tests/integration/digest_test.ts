/**
 * `bootcfs digest` against Debian's `fsverity digest` on generated files, and its errors on bad input.
 */
import assert from "node:assert/strict";
import { bootcfs, bootcfsCommand, run } from "../helpers/cli.ts";

function fill(path: string, size: number, seed: number) {
  using f = Deno.openSync(path, { write: true, create: true, truncate: true });
  const buf = new Uint8Array(Math.min(size, 1 << 20));
  let x = seed >>> 0 || 1;
  for (let done = 0; done < size;) {
    const n = Math.min(buf.length, size - done);
    for (let i = 0; i < n; i += 4) {
      x ^= x << 13, x ^= x >>> 17, x ^= x << 5;
      buf[i] = x, buf[i + 1] = x >>> 8, buf[i + 2] = x >>> 16, buf[i + 3] = x >>> 24;
    }
    f.writeSync(buf.subarray(0, n));
    done += n;
  }
}

const SIZES = [0, 1, 4095, 4096, 4097, 131071, 131072, 131073, 8 * 1024 * 1024 + 12345];

Deno.test("digest: same lines as `fsverity digest` for edge sizes, a multi-level tree and random sizes", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const files: string[] = [];
    const sizes = [...SIZES];
    for (let i = 0; i < 6; i++) sizes.push(Math.floor(Math.random() * 3_000_000));
    sizes.forEach((size, i) => {
      const p = `${dir}/f${i}-${size}`;
      fill(p, size, i + 1);
      files.push(p);
    });
    for (const alg of ["sha256", "sha512"]) {
      const expected = await run("fsverity", ["digest", `--hash-alg=${alg}`, "--block-size=4096", ...files]);
      const ours = await bootcfs(["digest", "--hash", alg, ...files]);
      assert.equal(ours.code, 0, ours.stderr);
      assert.equal(ours.stdout, expected, `sizes ${sizes.join(",")}`);
      // The node:crypto fallback for systems without libcrypto gives the same digests.
      const fallback = await bootcfs(["digest", "--hash", alg, ...files], { env: { BOOTCFS_NO_LIBCRYPTO: "1" } });
      assert.equal(fallback.stdout, expected);
      // So do OpenSSL's block-by-block SHA-512 where ipsec-mb's lanes are not used.
      const serial = await bootcfs(["digest", "--hash", alg, ...files], { env: { BOOTCFS_NO_IPSEC_MB: "1" } });
      assert.equal(serial.stdout, expected);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("digest: --json output", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/hw`, "hello world");
    const r = await bootcfs(["digest", "--json", `${dir}/hw`]);
    assert.deepEqual(JSON.parse(r.stdout), [{
      path: `${dir}/hw`,
      algorithm: "sha256",
      digest: "1e2eaa4202d750a41174ee454970b92c1bc2f925b1e35076d8c7d5f56362ba64",
    }]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("digest: bad input gives one clear line and exit 1", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    await run("mkfifo", [`${dir}/fifo`]);
    const cases: [string, RegExp][] = [
      [`${dir}/missing`, /No such file or directory/],
      [dir, /: is a directory$/],
      [`${dir}/fifo`, /: not a regular file$/],
    ];
    for (const [path, why] of cases) {
      const r = await bootcfs(["digest", path]);
      assert.equal(r.code, 1, path);
      assert.equal(r.stdout, "");
      const lines = r.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], new RegExp(`^error: computing the fs-verity digest of ${path}: `));
      assert.match(lines[0], why);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("digest: an unreadable file is reported (run as an unprivileged user)", async () => {
  assert.equal(Deno.uid(), 0, "this test needs root to switch to the nobody user");
  const dir = Deno.makeTempDirSync();
  try {
    Deno.chmodSync(dir, 0o755);
    Deno.writeTextFileSync(`${dir}/secret`, "x");
    Deno.chmodSync(`${dir}/secret`, 0o600);
    Deno.mkdirSync(`${dir}/deno`);
    Deno.chownSync(`${dir}/deno`, 65534, 65534);
    const [program, argv] = bootcfsCommand(["digest", `${dir}/secret`]);
    const r = await new Deno.Command("setpriv", {
      args: ["--reuid=65534", "--regid=65534", "--clear-groups", program, ...argv],
      env: { DENO_DIR: `${dir}/deno`, HOME: `${dir}/deno` },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(r.code, 1);
    assert.match(
      new TextDecoder().decode(r.stderr),
      /^error: computing the fs-verity digest of .*secret: Permission denied/,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("digest: usage errors exit 2", async () => {
  assert.equal((await bootcfs(["digest"])).code, 2);
  assert.equal((await bootcfs(["digest", "--hash", "md5", "x"])).code, 2);
});
