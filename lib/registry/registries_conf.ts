/**
 * Which registries are insecure (plain HTTP), from containers-registries.conf(5): `[[registry]]`
 * tables with `location`/`prefix` and `insecure = true`, and the v1 `[registries.insecure]`
 * `registries = [...]` list. Only these keys are read; everything else in the file is ignored.
 *
 * @module
 */

/** One `[[registry]]` entry that matters here. */
export interface RegistryEntry {
  /** The namespace the entry applies to (`prefix`, else `location`), e.g. `127.0.0.1:5000`. */
  prefix: string;
  insecure: boolean;
}

function unquote(value: string, file: string, line: number): string {
  const m = /^"((?:[^"\\]|\\.)*)"|^'([^']*)'/.exec(value.trim());
  if (!m) throw new Error(`${file}:${line}: expected a quoted string, got ${value.trim()}`);
  return m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2];
}

/**
 * Parses the subset of registries.conf that decides insecure registries.
 *
 * @example
 * ```ts
 * parseRegistriesConf('[[registry]]\nlocation = "127.0.0.1:5000"\ninsecure = true\n');
 * // [{ prefix: "127.0.0.1:5000", insecure: true }]
 * ```
 */
export function parseRegistriesConf(text: string, file = "registries.conf"): RegistryEntry[] {
  const entries: RegistryEntry[] = [];
  let table = "";
  let current: { location?: string; prefix?: string; insecure: boolean } | undefined;
  const flush = () => {
    const prefix = current?.prefix ?? current?.location;
    if (current && prefix !== undefined) entries.push({ prefix, insecure: current.insecure });
    current = undefined;
  };
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/^\s+/, "");
    if (line === "" || line.startsWith("#")) continue;
    const header = /^(\[\[?)\s*([\w.]+)\s*\]\]?/.exec(line);
    if (header) {
      flush();
      table = header[2];
      if (header[1] === "[[" && table === "registry") current = { insecure: false };
      continue;
    }
    const kv = /^([\w-]+)\s*=\s*(.*)$/.exec(line);
    if (!kv) continue;
    const [, key, value] = kv;
    if (current && table === "registry") {
      if (key === "location") current.location = unquote(value, file, i + 1);
      else if (key === "prefix") current.prefix = unquote(value, file, i + 1);
      else if (key === "insecure") current.insecure = value.trim().startsWith("true");
    } else if (table === "registries.insecure" && key === "registries") {
      let list = value;
      while (!list.includes("]") && i + 1 < lines.length) list += lines[++i];
      for (const m of list.matchAll(/"((?:[^"\\]|\\.)*)"|'([^']*)'/g)) {
        entries.push({ prefix: m[1] ?? m[2], insecure: true });
      }
    }
  }
  flush();
  return entries;
}

/**
 * True if the longest-matching entry for `registry/repository` marks it insecure. A prefix matches
 * the whole host or a path prefix at a `/` boundary; `*.example.com` matches subdomains.
 */
export function isInsecure(entries: RegistryEntry[], registry: string, repository: string): boolean {
  const name = `${registry}/${repository}`;
  let best: RegistryEntry | undefined;
  let bestLength = -1;
  for (const e of entries) {
    const p = e.prefix.replace(/\/+$/, "");
    const matches = p.startsWith("*.")
      ? registry.endsWith(p.slice(1))
      : name === p || name.startsWith(`${p}/`) || registry === p;
    if (matches && p.length > bestLength) {
      best = e;
      bestLength = p.length;
    }
  }
  return best?.insecure ?? false;
}

/**
 * Reads the registries.conf files podman would read: `$CONTAINERS_REGISTRIES_CONF` alone if set,
 * else `/etc/containers/registries.conf` plus `/etc/containers/registries.conf.d/*.conf` (sorted;
 * later files refine earlier ones). Missing files are skipped.
 */
export async function loadRegistriesConf(confPath?: string): Promise<RegistryEntry[]> {
  const paths: string[] = [];
  const explicit = confPath ?? Deno.env.get("CONTAINERS_REGISTRIES_CONF");
  if (explicit) {
    paths.push(explicit);
  } else {
    paths.push("/etc/containers/registries.conf");
    try {
      const names: string[] = [];
      for await (const e of Deno.readDir("/etc/containers/registries.conf.d")) {
        if (e.name.endsWith(".conf")) names.push(e.name);
      }
      paths.push(...names.sort().map((n) => `/etc/containers/registries.conf.d/${n}`));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  const entries: RegistryEntry[] = [];
  for (const p of paths) {
    let text: string;
    try {
      text = await Deno.readTextFile(p);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw new Error(`reading ${p}: ${(e as Error).message}`);
    }
    // Later files win for the same prefix: put them first so the longest-match tie goes to them.
    entries.unshift(...parseRegistriesConf(text, p));
  }
  return entries;
}
