/**
 * The host document of `bootcfs status` in bootc's output forms (bootc-layout.md §3.10): RFC 8785
 * canonical JSON, YAML, and the human text with its slot labels. Pure.
 *
 * @module
 */
import type { BootEntry, Host } from "./status.ts";

/**
 * RFC 8785 canonical JSON: object keys sorted by UTF-16 code units, no whitespace, numbers and
 * strings as ECMAScript serialises them; `undefined` members are left out.
 *
 * @example
 * ```ts
 * canonicalJson({ b: [1, "x"], a: null }); // '{"a":null,"b":[1,"x"]}'
 * ```
 */
export function canonicalJson(value: unknown): string {
  if (typeof value === "number" && !Number.isFinite(value)) throw new Error(`${value} has no JSON form`);
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(",")}}`;
}

/** Strings a YAML 1.1 or 1.2 reader would take for something else: null, booleans, numbers, times. */
const YAML_NOT_A_STRING = new RegExp(
  "^(?:~|null|Null|NULL|true|True|TRUE|false|False|FALSE|y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF|=|<<" +
    "|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])*(?:\\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|[-+]?\\.[0-9_]+(?:[eE][-+]?[0-9]+)?" +
    "|[-+]?0b[01_]+|[-+]?0o[0-7_]+|[-+]?0x[0-9a-fA-F_]+|[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN)" +
    "|\\d{4}-\\d{1,2}-\\d{1,2}(?:[Tt ].*)?)$",
);

/** A string as a YAML scalar: plain when that reads back as the same string, else double-quoted (JSON escapes are valid YAML). */
function yamlString(s: string): string {
  const unprintable = [...s].some((c) => {
    const n = c.codePointAt(0)!;
    return n < 0x20 || (n >= 0x7f && n <= 0x9f) || n === 0x2028 || n === 0x2029 || n === 0xfeff;
  });
  const plain = s !== "" && !unprintable && !YAML_NOT_A_STRING.test(s) && !/^[-?:,[\]{}#&*!|>'"%@`\s]/.test(s) &&
    !/\s$|: |:$| #/.test(s);
  return plain ? s : JSON.stringify(s);
}

function yamlScalar(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "string") return yamlString(v);
  if (typeof v === "number" && !Number.isFinite(v)) throw new Error(`${v} has no YAML form here`);
  if (Array.isArray(v)) return "[]";
  if (typeof v === "object") return "{}";
  return String(v);
}

function isBlock(v: unknown): v is Record<string, unknown> | unknown[] {
  return typeof v === "object" && v !== null && (Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0);
}

function yamlLines(v: Record<string, unknown> | unknown[], indent: number): string[] {
  const pad = " ".repeat(indent);
  const out: string[] = [];
  if (Array.isArray(v)) {
    for (const item of v) {
      if (!isBlock(item)) out.push(`${pad}- ${yamlScalar(item)}`);
      else if (Array.isArray(item)) out.push(`${pad}-`, ...yamlLines(item, indent + 2));
      else {
        // A map in a sequence starts on the dash's line: "- key: value", the rest under the key.
        const lines = yamlLines(item, indent + 2);
        out.push(`${pad}- ${lines[0].slice(indent + 2)}`, ...lines.slice(1));
      }
    }
    return out;
  }
  for (const [k, val] of Object.entries(v)) {
    if (val === undefined) continue;
    const key = yamlString(k);
    if (!isBlock(val)) out.push(`${pad}${key}: ${yamlScalar(val)}`);
    // Sequences under a key are not indented, as serde_yaml writes them.
    else out.push(`${pad}${key}:`, ...yamlLines(val, Array.isArray(val) ? indent : indent + 2));
  }
  return out;
}

/**
 * A JSON-shaped value (maps, arrays, strings, numbers, booleans, null) as block YAML in
 * serde_yaml's layout: keys in object order, sequences under a key not indented, strings plain
 * unless a YAML 1.1/1.2 reader would read them as something else (then double-quoted).
 *
 * @example
 * ```ts
 * toYaml({ a: [{ b: "yes" }], c: null }); // 'a:\n- b: "yes"\nc: null\n'
 * ```
 */
export function toYaml(value: unknown): string {
  if (!isBlock(value)) return `${yamlScalar(value)}\n`;
  return yamlLines(value, 0).join("\n") + "\n";
}

/** Slots as the human output names them. */
type Slot = "staged" | "booted" | "rollback" | null;

const SLOT_LABEL: Record<string, string> = {
  staged: "  Staged",
  booted: "● Booted",
  rollback: "  Rollback",
  other: "   Other",
};

/** A row of a slot: its name right-aligned to the slot label's width, as bootc's `write_row_name`. */
function row(width: number, name: string, value: string): string {
  return `${" ".repeat(Math.max(0, width - [...name].length))}${name}: ${value}`;
}

function renderSlot(e: BootEntry, slot: Slot, host: Host, verbose: boolean): string[] {
  const label = SLOT_LABEL[slot ?? "other"];
  const cfs = e.composefs;
  if (!e.image) {
    // A deployment whose origin names no container image: only its id, as bootc's composefs form.
    const prefix = `${label} composefs`;
    return [prefix, row([...prefix].length, "Commit", cfs.verity)];
  }
  const prefix = `${label} image`;
  const w = [...prefix].length;
  const img = e.image;
  const ref = img.image.transport === "registry" ? img.image.image : `${img.image.transport}:${img.image.image}`;
  const lines = [`${prefix}: ${ref}`, row(w, "Digest", `${img.imageDigest} (${img.architecture})`)];
  lines.push(row(w, "Verity", cfs.verity));
  // Human output drops fractional seconds.
  const ts = img.timestamp?.replace(/\.\d+Z$/, "Z");
  if (img.version !== null) lines.push(row(w, "Version", ts ? `${img.version} (${ts})` : img.version));
  else if (ts) lines.push(row(w, "Timestamp", ts));
  const overlay = host.status.usrOverlay;
  if (slot === "booted" && overlay) {
    const access = overlay.accessMode === "readOnly" ? "read-only" : "read/write";
    lines.push(row(w, "/usr overlay", `${overlay.persistence}, ${access}`));
  }
  if (verbose) {
    const sig = img.image.signature;
    if (sig) {
      lines.push(
        row(w, "Signature", sig === "containerPolicy" ? "container-policy" : `ostree-remote:${sig.ostreeRemote}`),
      );
    }
    lines.push(row(w, "Soft-reboot", e.softRebootCapable ? "yes" : "no"));
    lines.push(row(w, "FsVerity", cfs.missingVerityAllowed ? "Not Enforced" : "Enforced"));
    if (slot === "staged") lines.push(row(w, "Download-only", e.downloadOnly ? "yes" : "no"));
  }
  return lines;
}

/**
 * The human form of the status (bootc's layout: one block per slot — staged, booted, rollback,
 * then the others — separated by blank lines). Without a booted deployment (a target that is not
 * the running system) the first line says so and every deployment is shown as "Other".
 */
export function formatHuman(host: Host, opts: { verbose: boolean; root: string }): string {
  const blocks: string[][] = [];
  const s = host.status;
  if (s.booted === null) blocks.push([`No deployment of ${opts.root} is booted.`]);
  for (const slot of ["staged", "booted", "rollback"] as const) {
    const e = s[slot];
    if (e) blocks.push(renderSlot(e, slot, host, opts.verbose));
  }
  for (const e of s.otherDeployments ?? []) blocks.push(renderSlot(e, null, host, opts.verbose));
  return blocks.map((b) => b.join("\n")).join("\n\n") + "\n";
}
