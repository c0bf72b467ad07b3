import assert from "node:assert/strict";
import { V8_FLAGS } from "../../lib/runtime/v8_flags.ts";
import { REPO_ROOT } from "../helpers/paths.ts";

Deno.test("v8 flags: the bootcfs task and the compiled binary run with lib/runtime/v8_flags.ts", () => {
  const tasks = JSON.parse(Deno.readTextFileSync(`${REPO_ROOT}/deno.json`)).tasks;
  assert.match(tasks.bootcfs, new RegExp(` --v8-flags=${V8_FLAGS} main\\.ts$`));
  const compile = Deno.readTextFileSync(`${REPO_ROOT}/scripts/compile`);
  assert.match(compile, new RegExp(`^V8_FLAGS=${V8_FLAGS}$`, "m"));
  assert.match(compile, /--v8-flags="\$V8_FLAGS"/);
});
