/**
 * Registry credentials: the containers `auth.json` files (same lookup order as podman/skopeo) and
 * the `WWW-Authenticate` challenges of the distribution API (Basic, Bearer token).
 *
 * @module
 */
import { join } from "node:path";
import { charCodes } from "../bytes/mod.ts";

/** A user name and password (or registry token used as password). */
export interface Credentials {
  username: string;
  password: string;
}

/** A parsed `WWW-Authenticate` header: scheme plus its `key="value"` parameters. */
export interface Challenge {
  scheme: "basic" | "bearer";
  params: Record<string, string>;
}

/** Environment variables that decide where credentials are looked up. */
export type AuthEnv = Partial<
  Record<"REGISTRY_AUTH_FILE" | "XDG_RUNTIME_DIR" | "XDG_CONFIG_HOME" | "DOCKER_CONFIG" | "HOME", string>
>;

/** The current process's values of {@link AuthEnv}. */
export function processAuthEnv(): AuthEnv {
  const env: AuthEnv = {};
  for (const k of ["REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "DOCKER_CONFIG", "HOME"] as const) {
    const v = Deno.env.get(k);
    if (v !== undefined && v !== "") env[k] = v;
  }
  return env;
}

/**
 * The auth files to consult, most important first. An explicit `authFile` (`--authfile`) or
 * `$REGISTRY_AUTH_FILE` is used alone, so a caller that passes one never picks up a user's login
 * by accident; otherwise `${XDG_RUNTIME_DIR}/containers/auth.json`,
 * `${XDG_CONFIG_HOME:-$HOME/.config}/containers/auth.json`, `${DOCKER_CONFIG:-$HOME/.docker}/config.json`.
 */
export function authFilePaths(env: AuthEnv, authFile?: string): string[] {
  const explicit = authFile ?? env.REGISTRY_AUTH_FILE;
  if (explicit !== undefined) return [explicit];
  const paths: string[] = [];
  if (env.XDG_RUNTIME_DIR) paths.push(join(env.XDG_RUNTIME_DIR, "containers/auth.json"));
  const configHome = env.XDG_CONFIG_HOME ?? (env.HOME ? join(env.HOME, ".config") : undefined);
  if (configHome) paths.push(join(configHome, "containers/auth.json"));
  const dockerDir = env.DOCKER_CONFIG ?? (env.HOME ? join(env.HOME, ".docker") : undefined);
  if (dockerDir) paths.push(join(dockerDir, "config.json"));
  return paths;
}

/** Normalises an `auths` key: drops a scheme and Docker's legacy `/v1/` suffix. */
function normaliseKey(key: string): string {
  let k = key.replace(/^https?:\/\//, "").replace(/\/+$/, "");
  if (k.endsWith("/v1") || k.endsWith("/v2")) k = k.slice(0, -3);
  if (k === "index.docker.io" || k === "registry-1.docker.io") k = "docker.io";
  return k;
}

/**
 * Looks up credentials for `registry/repository` in the parsed content of one auth file: the
 * most specific `auths` key wins (`host/ns/repo`, then `host/ns`, then `host`).
 */
export function credentialsFromAuthJson(
  json: unknown,
  registry: string,
  repository: string,
  file: string,
): Credentials | undefined {
  const auths = (json as { auths?: Record<string, { auth?: string }> } | null)?.auths;
  if (typeof auths !== "object" || auths === null) return undefined;
  const byKey = new Map<string, { auth?: string }>();
  for (const [k, v] of Object.entries(auths)) byKey.set(normaliseKey(k), v);
  const parts = repository.split("/");
  for (let n = parts.length; n >= 0; n--) {
    const key = [registry, ...parts.slice(0, n)].join("/");
    const entry = byKey.get(key);
    if (entry?.auth === undefined) continue;
    const decoded = new TextDecoder().decode(Uint8Array.from(atob(entry.auth), (c) => c.charCodeAt(0)));
    const colon = decoded.indexOf(":");
    if (colon < 0) throw new Error(`${file}: the "auth" entry for ${key} is not base64 of user:password`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return undefined;
}

/**
 * Finds credentials for `registry/repository` in the auth files of {@link authFilePaths}; missing
 * default files are skipped, but an explicitly named one must exist.
 */
export async function findCredentials(
  registry: string,
  repository: string,
  env: AuthEnv,
  authFile?: string,
): Promise<Credentials | undefined> {
  const explicit = authFile ?? env.REGISTRY_AUTH_FILE;
  for (const path of authFilePaths(env, authFile)) {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound && explicit === undefined) continue;
      throw new Error(`reading auth file ${path}: ${(e as Error).message}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new Error(`auth file ${path} is not valid JSON: ${(e as Error).message}`);
    }
    const found = credentialsFromAuthJson(json, registry, repository, path);
    if (found) return found;
  }
  return undefined;
}

/**
 * Parses a `WWW-Authenticate` header value. Returns undefined for schemes other than Basic and
 * Bearer.
 *
 * @example
 * ```ts
 * parseChallenge('Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull"');
 * // { scheme: "bearer", params: { realm: "https://auth.example/token", service: "reg", scope: "repository:a:pull" } }
 * ```
 */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const scheme = m[1].toLowerCase();
  if (scheme !== "basic" && scheme !== "bearer") return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?\s*/g;
  for (const p of m[2].matchAll(re)) {
    params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : p[3];
  }
  return { scheme, params };
}

/** The value of an `Authorization: Basic` header. */
export function basicAuthorization(creds: Credentials): string {
  const bytes = new TextEncoder().encode(`${creds.username}:${creds.password}`);
  return `Basic ${btoa(charCodes(bytes))}`;
}
