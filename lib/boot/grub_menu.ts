/**
 * `grub2/user.cfg`, the menu of GRUB (classic) with UKIs (bootc-layout.md §1.6): a fixed header
 * that sources `efiuuid.cfg`, then one `menuentry` per deployment chain-loading its UKI from the
 * ESP. Pure: text in, text out.
 *
 * @module
 */
import { keyValueLines } from "./bls.ts";

/** The text bootc puts before the menu entries. */
export const USER_CFG_HEADER = "\nif [ -f ${config_directory}/efiuuid.cfg ]; then\n" +
  "        source ${config_directory}/efiuuid.cfg\nfi\n";

/** One `menuentry`. Unknown body lines are kept, in file order; `set` lines are dropped, as bootc does. */
export interface GrubMenuEntry {
  title: string;
  insmod: string[];
  search: string;
  chainloader: string;
  extras: [string, string][];
}

/** Index just past the `"…"` string starting at `s[i]` (a `"`), and its unescaped value. */
function quoted(s: string, i: number): [number, string] {
  let out = "";
  for (let j = i + 1; j < s.length; j++) {
    const c = s[j];
    if (c === "\\" && j + 1 < s.length) out += s[++j];
    else if (c === '"') return [j + 1, out];
    else out += c;
  }
  throw new Error("unterminated menuentry title");
}

/** Index of the `}` closing the `{` at `s[i]`; braces nest, `\` escapes the next character. */
function closingBrace(s: string, i: number): number {
  let depth = 0;
  for (let j = i; j < s.length; j++) {
    const c = s[j];
    if (c === "\\") j++;
    else if (c === "{") depth++;
    else if (c === "}" && --depth === 0) return j;
  }
  throw new Error("menuentry body has no closing brace");
}

function parseBody(title: string, body: string): GrubMenuEntry {
  const e: GrubMenuEntry = { title, insmod: [], search: "", chainloader: "", extras: [] };
  for (const [key, value] of keyValueLines(body)) {
    if (key === "insmod") e.insmod.push(value);
    else if (key === "search") e.search = value;
    else if (key === "chainloader") e.chainloader = value;
    else if (key !== "set") e.extras.push([key, value]);
  }
  return e;
}

/**
 * The menu entries of a `user.cfg`, in file order (the first is GRUB's default). Text outside
 * `menuentry` blocks (the header, comments) is skipped; an empty title is an error.
 *
 * @example
 * ```ts
 * parseUserCfg(USER_CFG_HEADER + 'menuentry "OS: (ab)" {\nchainloader /EFI/Linux/bootc/bootc_composefs-ab.efi\n}\n');
 * ```
 */
export function parseUserCfg(text: string): GrubMenuEntry[] {
  const entries: GrubMenuEntry[] = [];
  for (let at = text.indexOf("menuentry"); at >= 0; at = text.indexOf("menuentry", at)) {
    let i = at + "menuentry".length;
    while (/\s/.test(text[i] ?? "")) i++;
    if (text[i] !== '"') throw new Error("menuentry without a quoted title");
    const [afterTitle, title] = quoted(text, i);
    if (title === "") throw new Error("menuentry with an empty title");
    i = afterTitle;
    while (/\s/.test(text[i] ?? "")) i++;
    if (text[i] !== "{") throw new Error(`menuentry "${title}" has no body`);
    const end = closingBrace(text, i);
    entries.push(parseBody(title, text.slice(i + 1, end)));
    at = end + 1;
  }
  return entries;
}

function formatEntry(e: GrubMenuEntry): string {
  const title = e.title.replace(/[\\"]/g, (c) => "\\" + c);
  const lines = [`menuentry "${title}" {`, ...e.insmod.map((m) => `insmod ${m}`)];
  lines.push(`search ${e.search}`, `chainloader ${e.chainloader}`);
  for (const [k, v] of e.extras) lines.push(`${k} ${v}`);
  lines.push("}");
  return lines.map((l) => l + "\n").join("");
}

/** A whole `user.cfg`: the header, then the entries in menu order. */
export function formatUserCfg(entries: GrubMenuEntry[]): string {
  return USER_CFG_HEADER + entries.map((e) => "\n" + formatEntry(e)).join("");
}
