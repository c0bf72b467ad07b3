import assert from "node:assert/strict";
import { parseMeta, Repository, serializeMeta, upgradeLegacyLayout } from "../../lib/repository/mod.ts";
import { run } from "../helpers/cli.ts";

function legacyRepo(objectHexLength: number | null): string {
  const dir = Deno.makeTempDirSync();
  for (const d of ["objects", "streams", "images"]) Deno.mkdirSync(`${dir}/${d}`);
  if (objectHexLength) {
    Deno.mkdirSync(`${dir}/objects/ab`);
    Deno.writeTextFileSync(`${dir}/objects/ab/${"c".repeat(objectHexLength - 2)}`, "x");
  }
  return dir;
}

Deno.test("legacy repository: meta.json is written from the object names, V2 only", async () => {
  for (const [len, alg] of [[64, "sha256"], [128, "sha512"], [null, "sha512"]] as const) {
    const dir = legacyRepo(len);
    try {
      assert.throws(() => Repository.open(dir), /before 0\.7 \(no meta\.json\)/);
      assert.deepEqual(upgradeLegacyLayout(dir), { upgraded: true, alg, secure: false });
      const text = Deno.readTextFileSync(`${dir}/meta.json`);
      // Independent reading of what was written.
      assert.equal((await run("jq", ["-r", ".algorithm", `${dir}/meta.json`])).trim(), `fsverity-${alg}-12`);
      assert.equal((await run("jq", ["-c", ".erofs_formats", `${dir}/meta.json`])).trim(), '{"default":2}');
      assert.equal((await run("jq", ["-c", '.features["read-only-compatible"]', `${dir}/meta.json`])).trim(), "[]");
      assert.equal(text, serializeMeta(parseMeta(text)));
      const repo = Repository.open(dir);
      assert.equal(repo.alg, alg);
      repo.close();
      // Idempotent: a second run changes nothing.
      assert.deepEqual(upgradeLegacyLayout(dir), { upgraded: false });
      assert.equal(Deno.readTextFileSync(`${dir}/meta.json`), text);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  }
});

Deno.test("legacy repository: a directory without objects/ is left alone", () => {
  const dir = Deno.makeTempDirSync();
  try {
    assert.deepEqual(upgradeLegacyLayout(dir), { upgraded: false });
    assert.throws(() => Deno.lstatSync(`${dir}/meta.json`), Deno.errors.NotFound);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
