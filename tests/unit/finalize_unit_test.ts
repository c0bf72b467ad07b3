import assert from "node:assert/strict";
import { FINALIZE_UNIT, finalizeUnitText, startFinalizeUnit } from "../../lib/deploy/finalize_unit.ts";
import { selfCommand } from "../../lib/runtime/self.ts";
import { V8_FLAGS } from "../../lib/runtime/v8_flags.ts";

Deno.test("finalize unit: bootc's ordering, ExecStop quoted for systemd, accepted by systemd-analyze verify", async () => {
  const text = finalizeUnitText(["/usr/bin/true", '50% $HOME "q"']);
  assert.match(text, /^ExecStop="\/usr\/bin\/true" "50%% \$\$HOME \\"q\\"" "composefs-finalize-staged"$/m);
  for (const line of ["DefaultDependencies=no", "Conflicts=final.target", "Type=oneshot", "RemainAfterExit=yes"]) {
    assert.ok(text.split("\n").includes(line), line);
  }
  const dir = Deno.makeTempDirSync();
  try {
    // systemd-analyze checks the unit offline (keys, ExecStop executable): the real unit, as staging writes it.
    Deno.writeTextFileSync(`${dir}/${FINALIZE_UNIT}`, finalizeUnitText(selfCommand()));
    const r = await new Deno.Command("systemd-analyze", { args: ["verify", `${dir}/${FINALIZE_UNIT}`] }).output();
    const err = new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 0, err);
    assert.equal(err, "");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("selfCommand: the compiled binary itself, or deno run main.ts with the task's flags", () => {
  assert.deepEqual(selfCommand("/usr/bin/bootcfs", "file:///ignored.ts"), ["/usr/bin/bootcfs"]);
  assert.deepEqual(selfCommand("/opt/node_modules/@deno/linux-x64-glibc/deno", "file:///src/bootcfs/main.ts"), [
    "/opt/node_modules/@deno/linux-x64-glibc/deno",
    "run",
    "--allow-all",
    "--quiet",
    `--v8-flags=${V8_FLAGS}`,
    "/src/bootcfs/main.ts",
  ]);
});

Deno.test("finalize unit: not started for a root that is not the running system", async () => {
  assert.equal(await startFinalizeUnit("/mnt/target", ["/usr/bin/true"]), "/mnt/target is not the running system");
});
