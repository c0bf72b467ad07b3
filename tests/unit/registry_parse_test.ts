import assert from "node:assert/strict";
import {
  authFilePaths,
  credentialsFromAuthJson,
  findCredentials,
  isInsecure,
  parseChallenge,
  parseDigest,
  parseRegistriesConf,
  parseRegistryReference,
} from "../../lib/registry/mod.ts";

const D = "sha256:" + "ab".repeat(32);

Deno.test("parseRegistryReference: docker:// optional, Docker Hub defaults, tag latest", () => {
  assert.deepEqual(parseRegistryReference("docker://127.0.0.1:5000/rig/base:1"), {
    domain: "127.0.0.1:5000",
    path: "rig/base",
    tag: "1",
  });
  assert.deepEqual(parseRegistryReference("debian"), { domain: "docker.io", path: "library/debian", tag: "latest" });
  assert.deepEqual(parseRegistryReference(`reg:5000/a/b@${D}`), { domain: "reg:5000", path: "a/b", digest: D });
  assert.throws(() => parseRegistryReference("127.0.0.1:5000/Rig/BAD::x"), /invalid image name/);
});

Deno.test("parseDigest: algorithms and lengths", () => {
  assert.deepEqual(parseDigest(D), D);
  parseDigest("sha512:" + "0".repeat(128));
  assert.throws(() => parseDigest("md5:" + "0".repeat(32)), /not a digest/);
  assert.throws(() => parseDigest("sha256:" + "A".repeat(64)), /not a digest/);
});

Deno.test("authFilePaths: explicit file alone, else the containers/docker chain", () => {
  assert.deepEqual(authFilePaths({ HOME: "/h", REGISTRY_AUTH_FILE: "/e.json" }), ["/e.json"]);
  assert.deepEqual(authFilePaths({ HOME: "/h", REGISTRY_AUTH_FILE: "/e.json" }, "/flag.json"), ["/flag.json"]);
  assert.deepEqual(authFilePaths({ HOME: "/h", XDG_RUNTIME_DIR: "/run/user/0" }), [
    "/run/user/0/containers/auth.json",
    "/h/.config/containers/auth.json",
    "/h/.docker/config.json",
  ]);
  assert.deepEqual(authFilePaths({ HOME: "/h", XDG_CONFIG_HOME: "/c", DOCKER_CONFIG: "/d" }), [
    "/c/containers/auth.json",
    "/d/config.json",
  ]);
});

Deno.test("credentialsFromAuthJson: most specific key wins, legacy keys normalised", () => {
  const json = {
    auths: {
      "reg.io": { auth: btoa("host:pw") },
      "reg.io/team": { auth: btoa("team:pw2") },
      "https://index.docker.io/v1/": { auth: btoa("hub:pw3") },
    },
  };
  assert.deepEqual(credentialsFromAuthJson(json, "reg.io", "team/app", "f"), { username: "team", password: "pw2" });
  assert.deepEqual(credentialsFromAuthJson(json, "reg.io", "other/app", "f"), { username: "host", password: "pw" });
  assert.deepEqual(credentialsFromAuthJson(json, "docker.io", "library/debian", "f"), {
    username: "hub",
    password: "pw3",
  });
  assert.deepEqual(credentialsFromAuthJson(json, "elsewhere.io", "a", "f"), undefined);
  assert.throws(
    () => credentialsFromAuthJson({ auths: { "x.io": { auth: btoa("nocolon") } } }, "x.io", "a", "f"),
    /not base64/,
  );
});

Deno.test("findCredentials: reads files in order; an explicit missing file is an error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/run/containers`, { recursive: true });
    await Deno.mkdir(`${dir}/home/.docker`, { recursive: true });
    await Deno.writeTextFile(
      `${dir}/home/.docker/config.json`,
      JSON.stringify({ auths: { "r.io": { auth: btoa("d:1") } } }),
    );
    const env = { HOME: `${dir}/home`, XDG_RUNTIME_DIR: `${dir}/run` };
    assert.deepEqual(await findCredentials("r.io", "a", env), { username: "d", password: "1" });
    await Deno.writeTextFile(
      `${dir}/run/containers/auth.json`,
      JSON.stringify({ auths: { "r.io": { auth: btoa("c:2") } } }),
    );
    assert.deepEqual(await findCredentials("r.io", "a", env), { username: "c", password: "2" });
    await assert.rejects(
      () => findCredentials("r.io", "a", env, `${dir}/missing.json`),
      /reading auth file .*missing.json/,
    );
    await Deno.writeTextFile(`${dir}/bad.json`, "{");
    await assert.rejects(() => findCredentials("r.io", "a", env, `${dir}/bad.json`), /is not valid JSON/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseChallenge: Bearer and Basic with quoted parameters", () => {
  assert.deepEqual(
    parseChallenge('Bearer realm="https://auth.io/token",service="registry.io",scope="repository:a/b:pull,push"'),
    {
      scheme: "bearer",
      params: { realm: "https://auth.io/token", service: "registry.io", scope: "repository:a/b:pull,push" },
    },
  );
  assert.deepEqual(parseChallenge('Basic realm="rig"'), { scheme: "basic", params: { realm: "rig" } });
  assert.deepEqual(parseChallenge("Negotiate abc"), undefined);
});

Deno.test("registries.conf: [[registry]] tables, v1 insecure list, longest prefix wins", () => {
  const entries = parseRegistriesConf(`
unqualified-search-registries = ["docker.io"]

[[registry]]
location = "127.0.0.1:5000"
insecure = true

[[registry]]
prefix = "127.0.0.1:5000/secure"
location = "127.0.0.1:5000/secure"
insecure = false

[[registry]]
location = "*.lan"
insecure = true

[registries.insecure]
registries = ['old.example:80',
  "other.example"]
`);
  assert.deepEqual(isInsecure(entries, "127.0.0.1:5000", "rig/base"), true);
  assert.deepEqual(isInsecure(entries, "127.0.0.1:5000", "secure/x"), false);
  assert.deepEqual(isInsecure(entries, "box.lan", "x"), true);
  assert.deepEqual(isInsecure(entries, "old.example:80", "x"), true);
  assert.deepEqual(isInsecure(entries, "other.example", "x"), true);
  assert.deepEqual(isInsecure(entries, "quay.io", "x"), false);
  assert.throws(
    () => parseRegistriesConf("[[registry]]\nlocation = bare\n", "f.conf"),
    /f.conf:2: expected a quoted string/,
  );
});
