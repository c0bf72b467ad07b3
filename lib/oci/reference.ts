/**
 * Image references with a transport prefix, normalised like containers/image: `docker://busybox`
 * → `docker.io/library/busybox:latest`. Pure string handling.
 *
 * @module
 */
import { type Digest, parseDigest } from "./digest.ts";

/** A registry image name: domain, repository path, and tag and/or digest. */
export interface DockerReference {
  /** Registry host (`docker.io`, `quay.io`, `localhost:5000`). */
  domain: string;
  /** Repository path (`library/busybox`). */
  path: string;
  tag?: string;
  digest?: Digest;
}

/** A containers-storage store given in brackets: `[driver@root+runroot:options]`. */
export interface StoreSpec {
  driver?: string;
  root: string;
  runRoot?: string;
  options?: string[];
}

/** A parsed image reference. */
export type ImageReference =
  | { transport: "oci"; path: string; tag?: string }
  | { transport: "oci-archive"; path: string; tag?: string }
  | { transport: "docker-archive"; path: string; ref?: DockerReference; index?: number }
  | { transport: "docker"; ref: DockerReference }
  | { transport: "containers-storage"; store?: StoreSpec; ref?: DockerReference; id?: string };

const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?$`);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const HEX64_RE = /^[a-f0-9]{64}$/;

/**
 * Parses a registry image name the way `docker pull` does: default registry `docker.io`,
 * `library/` for official images, `index.docker.io` → `docker.io`. When `defaultTag` is given
 * and the name has neither tag nor digest, it gets that tag.
 *
 * @example
 * ```ts
 * parseDockerReference("busybox", "latest"); // { domain: "docker.io", path: "library/busybox", tag: "latest" }
 * ```
 */
export function parseDockerReference(s: string, defaultTag?: string): DockerReference {
  const bad = (why: string) => new Error(`invalid image name ${JSON.stringify(s)}: ${why}`);
  if (!s) throw bad("empty");
  if (HEX64_RE.test(s)) throw bad("a 64-hex-digit string is an image ID, not a name");
  let rest = s;
  let digest: Digest | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = parseDigest(rest.slice(at + 1));
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw bad(`invalid tag ${JSON.stringify(tag)}`);
  }
  let domain = "docker.io";
  let path = rest;
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost" || first.toLowerCase() !== first) {
      domain = first;
      path = rest.slice(slash + 1);
    }
  }
  if (!DOMAIN_RE.test(domain)) throw bad(`invalid registry ${JSON.stringify(domain)}`);
  if (domain === "index.docker.io") domain = "docker.io";
  if (domain === "docker.io" && !path.includes("/")) path = `library/${path}`;
  if (/[A-Z]/.test(path)) throw bad("repository name must be lowercase");
  if (!path.split("/").every((c) => PATH_COMPONENT_RE.test(c))) throw bad("invalid repository path");
  if (domain.length + 1 + path.length > 255) throw bad("name longer than 255 characters");
  const out: DockerReference = { domain, path };
  if (tag !== undefined) out.tag = tag;
  if (digest) out.digest = digest;
  if (!tag && !digest && defaultTag) out.tag = defaultTag;
  return out;
}

/** `domain/path[:tag][@digest]`. */
export function formatDockerReference(r: DockerReference): string {
  return `${r.domain}/${r.path}${r.tag ? `:${r.tag}` : ""}${r.digest ? `@${r.digest}` : ""}`;
}

/** `oci:` rule (composefs-rs): split at the last `:` unless what follows contains `/`. */
function splitLastColon(s: string): { path: string; tag?: string } {
  const i = s.lastIndexOf(":");
  if (i < 0 || s.slice(i + 1).includes("/")) return { path: s };
  const tag = s.slice(i + 1);
  return tag ? { path: s.slice(0, i), tag } : { path: s.slice(0, i) };
}

function parseStoreSpec(spec: string): StoreSpec {
  let rest = spec;
  const out: StoreSpec = { root: "" };
  const colon = rest.indexOf(":");
  if (colon >= 0) {
    out.options = rest.slice(colon + 1).split(",").filter((o) => o);
    rest = rest.slice(0, colon);
  }
  const at = rest.indexOf("@");
  if (at >= 0) {
    out.driver = rest.slice(0, at);
    rest = rest.slice(at + 1);
  }
  const plus = rest.indexOf("+");
  if (plus >= 0) {
    out.runRoot = rest.slice(plus + 1);
    rest = rest.slice(0, plus);
  }
  out.root = rest;
  if (!out.root.startsWith("/")) {
    throw new Error(`invalid containers-storage store [${spec}]: the root must be an absolute path`);
  }
  if (out.runRoot !== undefined && !out.runRoot.startsWith("/")) {
    throw new Error(`invalid containers-storage store [${spec}]: the run root must be an absolute path`);
  }
  return out;
}

/**
 * Parses `TRANSPORT:REST` for the transports bootcfs reads:
 * `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:NAME:TAG|:@INDEX]`,
 * `docker://[REGISTRY/]NAME[:TAG|@DIGEST]`, `containers-storage:[[STORE]]NAME|ID`.
 * Names are normalised (docker.io, `library/`, `latest`); a `docker://` name with both tag and
 * digest is refused, like containers/image does.
 *
 * @example
 * ```ts
 * parseImageReference("docker://quay.io/fedora/fedora-bootc:42");
 * parseImageReference("oci:/srv/layout:v1");
 * ```
 */
export function parseImageReference(s: string): ImageReference {
  const colon = s.indexOf(":");
  if (colon <= 0) {
    throw new Error(`invalid image reference ${JSON.stringify(s)}: missing transport (e.g. docker://, oci:)`);
  }
  const transport = s.slice(0, colon);
  const rest = s.slice(colon + 1);
  const need = (v: string, what: string) => {
    if (!v) throw new Error(`invalid image reference ${JSON.stringify(s)}: missing ${what}`);
    return v;
  };
  switch (transport) {
    case "oci": {
      const r = splitLastColon(rest);
      return { transport, path: need(r.path, "directory"), ...(r.tag ? { tag: r.tag } : {}) };
    }
    case "oci-archive": {
      // containers/image splits at the first colon for archives.
      const i = rest.indexOf(":");
      const path = need(i < 0 ? rest : rest.slice(0, i), "archive path");
      const tag = i < 0 ? "" : rest.slice(i + 1);
      return { transport, path, ...(tag ? { tag } : {}) };
    }
    case "docker-archive": {
      const i = rest.indexOf(":");
      const path = need(i < 0 ? rest : rest.slice(0, i), "archive path");
      const sel = i < 0 ? "" : rest.slice(i + 1);
      if (!sel) return { transport, path };
      if (sel.startsWith("@")) {
        if (!/^@[0-9]+$/.test(sel)) throw new Error(`invalid image reference ${JSON.stringify(s)}: bad index ${sel}`);
        return { transport, path, index: Number(sel.slice(1)) };
      }
      const ref = parseDockerReference(sel, "latest");
      if (ref.digest) {
        throw new Error(`invalid image reference ${JSON.stringify(s)}: docker-archive names cannot have a digest`);
      }
      return { transport, path, ref };
    }
    case "docker": {
      if (!rest.startsWith("//")) throw new Error(`invalid image reference ${JSON.stringify(s)}: want docker://NAME`);
      const ref = parseDockerReference(need(rest.slice(2), "image name"), "latest");
      if (ref.tag && ref.digest) {
        throw new Error(`invalid image reference ${JSON.stringify(s)}: both a tag and a digest are not supported`);
      }
      return { transport, ref };
    }
    case "containers-storage": {
      let name = rest;
      let store: StoreSpec | undefined;
      if (name.startsWith("[")) {
        const end = name.indexOf("]");
        if (end < 0) throw new Error(`invalid image reference ${JSON.stringify(s)}: unterminated [store]`);
        store = parseStoreSpec(name.slice(1, end));
        name = name.slice(end + 1);
      }
      need(name, "image name or ID");
      const base = store ? { transport, store } : { transport };
      if (HEX64_RE.test(name)) return { ...base, id: name };
      if (name.startsWith("sha256:") && HEX64_RE.test(name.slice(7))) return { ...base, id: name.slice(7) };
      const at = name.lastIndexOf("@");
      if (at >= 0 && HEX64_RE.test(name.slice(at + 1))) {
        return { ...base, ref: parseDockerReference(name.slice(0, at), "latest"), id: name.slice(at + 1) };
      }
      return { ...base, ref: parseDockerReference(name, "latest") };
    }
    default:
      throw new Error(`unsupported image transport ${JSON.stringify(transport)} in ${JSON.stringify(s)}`);
  }
}

/** The canonical string of a parsed reference (normalised names). */
export function formatImageReference(r: ImageReference): string {
  switch (r.transport) {
    case "oci":
    case "oci-archive":
      return `${r.transport}:${r.path}${r.tag ? `:${r.tag}` : ""}`;
    case "docker-archive":
      return `docker-archive:${r.path}${r.ref ? `:${formatDockerReference(r.ref)}` : ""}${
        r.index !== undefined ? `:@${r.index}` : ""
      }`;
    case "docker":
      return `docker://${formatDockerReference(r.ref)}`;
    case "containers-storage": {
      const st = r.store
        ? `[${r.store.driver ? `${r.store.driver}@` : ""}${r.store.root}${
          r.store.runRoot ? `+${r.store.runRoot}` : ""
        }${r.store.options?.length ? `:${r.store.options.join(",")}` : ""}]`
        : "";
      const name = r.ref ? formatDockerReference(r.ref) : "";
      return `containers-storage:${st}${name}${r.id ? (name ? `@${r.id}` : r.id) : ""}`;
    }
  }
}
