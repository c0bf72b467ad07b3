/**
 * An image's `/usr/lib/bootc/kargs.d/*.toml` (bootc-layout.md §1.9, §3.6 step 2): kernel arguments
 * the image asks for, each file `kargs = ["…", …]` with an optional
 * `match-architectures = ["x86_64", …]` (Rust's architecture names; a file for other
 * architectures is skipped); other keys are an error, as in bootc. Files are read in name order.
 *
 * These files use a sliver of TOML, which is what this reads: bare keys, `=`, arrays of basic
 * (`"…"`, with escapes) or literal (`'…'`) strings that may span lines and end with a comma, and
 * `#` comments. Anything else is refused with the file and line rather than guessed at. Pure.
 *
 * @module
 */

/** What one kargs.d file says. */
export interface KargsFile {
  kargs: string[];
  /** Null: every architecture. */
  matchArchitectures: string[] | null;
}

type Token = { kind: "key" | "string" | "=" | "[" | "]" | "," | "newline"; text: string; line: number };

const ESCAPES: Record<string, string> = { b: "\b", t: "\t", n: "\n", f: "\f", r: "\r", '"': '"', "\\": "\\" };

function tokenize(text: string, name: string): Token[] {
  const out: Token[] = [];
  let line = 1;
  const fail = (msg: string): never => {
    throw new Error(`${name}:${line}: ${msg}`);
  };
  for (let i = 0; i < text.length;) {
    const c = text[i];
    if (c === "\n") {
      out.push({ kind: "newline", text: c, line: line++ });
      i++;
    } else if (c === " " || c === "\t" || c === "\r") i++;
    else if (c === "#") { while (i < text.length && text[i] !== "\n") i++; }
    else if (c === "=" || c === "[" || c === "]" || c === ",") {
      out.push({ kind: c, text: c, line });
      i++;
    } else if (c === '"' || c === "'") {
      if (text.startsWith(c.repeat(3), i)) fail("multi-line strings are not supported here");
      let s = "";
      let j = i + 1;
      for (;; j++) {
        if (j >= text.length || text[j] === "\n") fail("unterminated string");
        const d = text[j];
        if (d === c) break;
        if (c === '"' && d === "\\") {
          const e = text[++j];
          if (e === "u" || e === "U") {
            const len = e === "u" ? 4 : 8;
            const hex = text.slice(j + 1, j + 1 + len);
            if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len) fail(`bad \\${e} escape`);
            s += String.fromCodePoint(parseInt(hex, 16));
            j += len;
          } else if (e in ESCAPES) s += ESCAPES[e];
          else fail(`bad escape \\${e ?? ""}`);
        } else s += d;
      }
      out.push({ kind: "string", text: s, line });
      i = j + 1;
    } else if (/[A-Za-z0-9_-]/.test(c)) {
      let j = i;
      while (j < text.length && /[A-Za-z0-9_-]/.test(text[j])) j++;
      out.push({ kind: "key", text: text.slice(i, j), line });
      i = j;
    } else fail(`unexpected '${c}'`);
  }
  return out;
}

/** Parses one kargs.d file; `name` is used in error messages. */
export function parseKargsFile(text: string, name: string): KargsFile {
  const tokens = tokenize(text, name);
  const values = new Map<string, string[]>();
  let i = 0;
  const fail = (msg: string): never => {
    throw new Error(`${name}:${tokens[Math.min(i, tokens.length - 1)]?.line ?? 1}: ${msg}`);
  };
  const skipNewlines = () => {
    while (tokens[i]?.kind === "newline") i++;
  };
  for (skipNewlines(); i < tokens.length; skipNewlines()) {
    const key = tokens[i];
    if (key.kind === "[") fail("tables are not allowed in a kargs.d file");
    if (key.kind !== "key") fail(`expected a key, found '${key.text}'`);
    if (key.text !== "kargs" && key.text !== "match-architectures") fail(`unknown key '${key.text}'`);
    if (values.has(key.text)) fail(`'${key.text}' given twice`);
    i++;
    if (tokens[i]?.kind !== "=") fail(`expected '=' after '${key.text}'`);
    i++;
    if (tokens[i]?.kind !== "[") fail(`'${key.text}' must be an array of strings`);
    i++;
    const list: string[] = [];
    for (;;) {
      skipNewlines();
      const t = tokens[i];
      if (!t) fail(`unterminated array '${key.text}'`);
      if (t.kind === "]") break;
      if (t.kind !== "string") fail(`'${key.text}' must be an array of strings`);
      list.push(t.text);
      i++;
      skipNewlines();
      if (tokens[i]?.kind === ",") i++;
      else if (!tokens[i]) fail(`unterminated array '${key.text}'`);
      else if (tokens[i].kind !== "]") fail(`expected ',' or ']' in '${key.text}'`);
    }
    i++;
    if (i < tokens.length && tokens[i].kind !== "newline") fail(`unexpected '${tokens[i].text}' after '${key.text}'`);
    values.set(key.text, list);
  }
  const kargs = values.get("kargs");
  if (!kargs) throw new Error(`${name}: no 'kargs' array`);
  return { kargs, matchArchitectures: values.get("match-architectures") ?? null };
}

/** The kernel arguments of an image's kargs.d files (`[name, text]`, any order) for `arch`. */
export function imageKargs(files: [string, string][], arch: string): string[] {
  const out: string[] = [];
  for (const [name, text] of [...files].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)) {
    if (!name.endsWith(".toml")) continue;
    const f = parseKargsFile(text, name);
    if (f.matchArchitectures === null || f.matchArchitectures.includes(arch)) out.push(...f.kargs);
  }
  return out;
}
