/**
 * lib/runtime/gc.ts `trimmingMalloc`: memory freed into glibc's arenas between live allocations
 * (what V8 leaves when it collects ArrayBuffers) goes back to the kernel while the handle lives,
 * and not otherwise. Run in a child process with `--expose-gc`, as bootcfs runs.
 */
import assert from "node:assert/strict";
import { REPO_ROOT } from "../helpers/paths.ts";

/** 64 MiB of 64 KiB buffers (below glibc's mmap threshold, so from the arena), every other one dropped. */
const SCRIPT = `
import { fullGc, trimmingMalloc } from "${REPO_ROOT}/lib/runtime/gc.ts";
let all = Array.from({ length: 1024 }, () => new Uint8Array(64 << 10).fill(1));
const kept = all.filter((_, i) => i % 2 === 0);
all = [];
fullGc();
await new Promise((r) => setTimeout(r, 100)); // V8 frees backing stores on a background thread
const before = Deno.memoryUsage().rss;
{
  using _ = Deno.args[0] === "trim" ? trimmingMalloc(50) : undefined;
  await new Promise((r) => setTimeout(r, 300));
}
console.log(JSON.stringify({ before, after: Deno.memoryUsage().rss, kept: kept.length }));
`;

async function freedMiB(mode: "trim" | "none"): Promise<number> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--v8-flags=--expose-gc", SCRIPT, mode],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.ok(out.success, `child (${mode}) failed`);
  const r = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.equal(r.kept, 512);
  return (r.before - r.after) / 2 ** 20;
}

Deno.test("trimmingMalloc: free arena memory between live buffers is handed back, only while trimming", async () => {
  const trimmed = await freedMiB("trim");
  const untouched = await freedMiB("none");
  assert.ok(trimmed > 24, `trimming freed only ${trimmed.toFixed(1)} MiB of 32`);
  assert.ok(untouched < 8, `without trimming ${untouched.toFixed(1)} MiB went back anyway: the test proves nothing`);
});
