/**
 * A deployment's `<id>.origin` (bootc-layout.md §2.1): the keyfile bootc writes beside each
 * deployment's `/etc` and reads back in status, GC and upgrade. Writing follows bootc's INI writer
 * byte for byte (`[section]`, `key = value`, a blank line between sections, no trailing newline);
 * reading follows the rules of the INI library bootc uses (`;` starts a comment anywhere on a
 * line, a line without `=` is a syntax error, repeated keys: last wins). The image reference it
 * stores (`ostree-unverified-image:docker://…`) is parsed back into the `image` object of
 * `bootcfs status`. Pure: text in, text out.
 *
 * @module
 */

/** What a deployment's `<id>.origin` says (bootc-layout.md §2.1). */
export interface Origin {
  /** `[origin] container-image-reference`, e.g. `ostree-unverified-image:docker://quay.io/x:1`. */
  imageReference?: string;
  /** `[boot] boot_type`. */
  bootType?: "bls" | "uki";
  /** `[boot] digest`: hex SHA-256 of vmlinuz‖initrd (or the UKI's .linux‖.initrd). */
  bootDigest?: string;
  /** `[image] manifest_digest`, `sha256:<hex>`. */
  manifestDigest?: string;
}

/** A keyfile as sections of keys, both in first-seen order. */
export type Keyfile = Map<string, Map<string, string>>;

/**
 * Parses keyfile text with the rules of the INI library bootc reads `.origin` with: on each line
 * everything from the first `;` is dropped and the rest trimmed; empty lines are skipped;
 * `[name]` starts (or re-opens: sections merge) a section, and a line starting with `[` that does
 * not end with `]` is an error; any other line must hold `=`, split at the first one, both sides
 * trimmed, and the key must not be empty. A `#` comment has no `=` and so is a syntax error, as
 * upstream. Repeated keys: the last wins. Keys before any section go to the section `""`.
 *
 * @example
 * ```ts
 * parseKeyfile("[boot]\nboot_type = bls ; comment\n").get("boot")?.get("boot_type"); // "bls"
 * ```
 */
export function parseKeyfile(text: string): Keyfile {
  const sections: Keyfile = new Map();
  let current = "";
  const section = (name: string) => sections.get(name) ?? sections.set(name, new Map()).get(name)!;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const semi = lines[i].indexOf(";");
    const line = (semi >= 0 ? lines[i].slice(0, semi) : lines[i]).trim();
    if (line === "") continue;
    const where = `line ${i + 1}`;
    if (line.startsWith("[")) {
      if (!line.endsWith("]")) throw new Error(`${where}: section header '${line}' does not end with ']'`);
      // Upstream strips every leading '[' and trailing ']', nothing else.
      current = line.replace(/^\[+/, "").replace(/\]+$/, "");
      section(current);
      continue;
    }
    const eq = line.indexOf("=");
    if (eq < 0) throw new Error(`${where}: '${line}' is neither a [section] nor a key = value line`);
    const key = line.slice(0, eq).trim();
    if (key === "") throw new Error(`${where}: empty key before '='`);
    section(current).set(key, line.slice(eq + 1).trim());
  }
  return sections;
}

/**
 * Parses an `.origin` ({@link parseKeyfile}'s rules); keys bootc does not read are ignored. A
 * `boot_type` other than `bls` or `uki` is an error (bootc refuses it too); a missing one is left
 * for the caller to judge (status requires it, GC does not).
 *
 * @example
 * ```ts
 * parseOrigin("[boot]\nboot_type = uki").bootType; // "uki"
 * ```
 */
export function parseOrigin(text: string): Origin {
  const kf = parseKeyfile(text);
  const o: Origin = {};
  const imageReference = kf.get("origin")?.get("container-image-reference");
  if (imageReference !== undefined) o.imageReference = imageReference;
  const bootType = kf.get("boot")?.get("boot_type");
  if (bootType !== undefined) {
    if (bootType !== "bls" && bootType !== "uki") throw new Error(`unknown [boot] boot_type '${bootType}'`);
    o.bootType = bootType;
  }
  const bootDigest = kf.get("boot")?.get("digest");
  if (bootDigest !== undefined) o.bootDigest = bootDigest;
  const manifestDigest = kf.get("image")?.get("manifest_digest");
  if (manifestDigest !== undefined) o.manifestDigest = manifestDigest;
  return o;
}

/**
 * The text of an `.origin` as bootc writes it: `[origin]`, `[boot]` (`boot_type`, then `digest`),
 * `[image]`, each `key = value`, a blank line between sections, no trailing newline; absent keys
 * and empty sections are left out. A value that could not be read back as written (a newline, or
 * `;`, which the reader takes for a comment) is refused.
 *
 * @example
 * ```ts
 * formatOrigin({ imageReference: originReference("docker://quay.io/x:1"), bootType: "bls" });
 * // "[origin]\ncontainer-image-reference = ostree-unverified-image:docker://quay.io/x:1\n\n[boot]\nboot_type = bls"
 * ```
 */
export function formatOrigin(o: Origin): string {
  const sections: [string, [string, string | undefined][]][] = [
    ["origin", [["container-image-reference", o.imageReference]]],
    ["boot", [["boot_type", o.bootType], ["digest", o.bootDigest]]],
    ["image", [["manifest_digest", o.manifestDigest]]],
  ];
  const out: string[] = [];
  for (const [name, keys] of sections) {
    const lines: string[] = [];
    for (const [k, v] of keys) {
      if (v === undefined) continue;
      if (/[\n\r;]/.test(v) || v !== v.trim()) throw new Error(`origin ${k} '${v}' cannot be stored in a keyfile`);
      lines.push(`${k} = ${v}`);
    }
    if (lines.length > 0) out.push([`[${name}]`, ...lines].join("\n"));
  }
  return out.join("\n\n");
}

/** Transport prefixes of an image reference, as bootc writes them after the signature scheme. */
const TRANSPORT_PREFIXES = [
  "docker://",
  "oci:",
  "oci-archive:",
  "docker-archive:",
  "containers-storage:",
  "dir:",
  "docker-daemon:",
];

/**
 * The `container-image-reference` bootc stores for `imgref` (`docker://NAME`, `oci:DIR[:TAG]`,
 * `oci-archive:…`, `docker-archive:…`, `containers-storage:…`, `dir:…`, `docker-daemon:…`):
 * always `ostree-unverified-image:` in front, as upstream (even with a signature policy).
 *
 * @example
 * ```ts
 * originReference("oci:/srv/os:1"); // "ostree-unverified-image:oci:/srv/os:1"
 * ```
 */
export function originReference(imgref: string): string {
  const t = TRANSPORT_PREFIXES.find((p) => imgref.startsWith(p));
  if (!t || imgref.length === t.length) {
    throw new Error(`image reference '${imgref}' has no transport (docker://, oci:, containers-storage:, …)`);
  }
  return `ostree-unverified-image:${imgref}`;
}

/** The `image` object of `bootcfs status`: a reference split into transport and name, with its signature policy. */
export interface ImageReference {
  image: string;
  transport: string;
  signature?: "containerPolicy" | { ostreeRemote: string };
}

/** The reference to pull an image of status by: `docker://NAME` for the registry, else `<transport>:NAME`. */
export function pullReference(ref: ImageReference): string {
  return ref.transport === "registry" ? `docker://${ref.image}` : `${ref.transport}:${ref.image}`;
}

/** Transport names as they appear before the first `:` of a reference → the name status shows. */
const TRANSPORTS: Record<string, string> = {
  registry: "registry",
  docker: "registry",
  oci: "oci",
  "oci-archive": "oci-archive",
  "docker-archive": "docker-archive",
  "containers-storage": "containers-storage",
  dir: "dir",
  "docker-daemon": "docker-daemon",
};

/** `s` split at its first `:`; `missing` is the error when there is none. */
function splitOnce(s: string, missing: () => string): [string, string] {
  const i = s.indexOf(":");
  if (i < 0) throw new Error(missing());
  return [s.slice(0, i), s.slice(i + 1)];
}

/**
 * Parses a `container-image-reference` back (bootc-layout.md §2.1): the signature scheme
 * (`ostree-unverified-image`, `ostree-image-signed`, `ostree-remote-image:<remote>`, and the
 * shorthands `ostree-unverified-registry:<name>`, `ostree-remote-registry:<remote>:<name>`), then
 * `<transport>:<name>`, where `docker://x` and `registry:x` are both the registry.
 *
 * @example
 * ```ts
 * parseOriginReference("ostree-unverified-image:docker://quay.io/x:1");
 * // { image: "quay.io/x:1", transport: "registry" }
 * ```
 */
export function parseOriginReference(ref: string): ImageReference {
  const [scheme, rest] = splitOnce(ref, () => `image reference '${ref}' has no signature scheme (ostree-…:)`);
  let signature: ImageReference["signature"];
  let imgref: string;
  switch (scheme) {
    case "ostree-unverified-image":
      imgref = rest;
      break;
    case "ostree-unverified-registry":
      imgref = `registry:${rest}`;
      break;
    case "ostree-image-signed":
      signature = "containerPolicy";
      imgref = rest;
      break;
    case "ostree-remote-image":
    case "ostree-remote-registry": {
      const [remote, name] = splitOnce(rest, () => `image reference '${ref}' has no remote name`);
      signature = { ostreeRemote: remote };
      imgref = scheme === "ostree-remote-registry" ? `registry:${name}` : name;
      break;
    }
    default:
      throw new Error(`image reference '${ref}': unknown signature scheme '${scheme}'`);
  }
  const [transport, raw] = splitOnce(imgref, () => `image reference '${ref}' has no transport`);
  const name = TRANSPORTS[transport];
  if (name === undefined) throw new Error(`image reference '${ref}': unknown transport '${transport}'`);
  let image = raw;
  if (transport === "docker") {
    if (!raw.startsWith("//")) throw new Error(`image reference '${ref}': docker: without '//'`);
    image = raw.slice(2);
  }
  if (image === "") throw new Error(`image reference '${ref}' has an empty name`);
  return signature === undefined ? { image, transport: name } : { image, transport: name, signature };
}
