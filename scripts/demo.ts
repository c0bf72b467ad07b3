/**
 * The README's first command: bootcfs's main job on an embedded default, run as a user would run
 * the CLI (each step printed, then its output). Everything happens in a scratch directory.
 *
 * Today: version, then the fs-verity digest of a generated sample file (checked against
 * `fsverity digest` when that tool is installed). See README.md for what this becomes.
 */
const main = new URL("../main.ts", import.meta.url).pathname;
const bin = Deno.env.get("BOOTCFS_BIN");
const argv0 = bin ? [bin] : [Deno.execPath(), "run", "--allow-all", "--quiet", main];

async function step(args: string[]): Promise<string> {
  console.log(`$ bootcfs ${args.join(" ")}`);
  const r = await new Deno.Command(argv0[0], { args: [...argv0.slice(1), ...args], stdout: "piped" }).output();
  const out = new TextDecoder().decode(r.stdout);
  Deno.stdout.writeSync(r.stdout);
  if (r.code !== 0) throw new Error(`bootcfs ${args.join(" ")} failed with exit code ${r.code}`);
  return out;
}

const scratch = Deno.makeTempDirSync({ prefix: "bootcfs-demo-" });
try {
  await step(["--version"]);
  const sample = `${scratch}/sample.bin`;
  const data = new Uint8Array(3 * 1024 * 1024 + 17);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 12)) & 0xff;
  Deno.writeFileSync(sample, data);
  const ours = await step(["digest", "--hash", "sha512", sample]);
  try {
    const ref = await new Deno.Command("fsverity", { args: ["digest", "--hash-alg=sha512", sample] }).output();
    const same = new TextDecoder().decode(ref.stdout) === ours;
    console.log(same ? "matches `fsverity digest`" : "DIFFERS from `fsverity digest`");
    if (!same) Deno.exitCode = 1;
  } catch {
    console.log("(fsverity not installed: no cross-check)");
  }
} finally {
  Deno.removeSync(scratch, { recursive: true });
}
