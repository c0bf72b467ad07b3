/**
 * Entry path normalisation as composefs does it when a layer is applied (oci-and-boot.md §4.4):
 * absolute, no empty or `.` components, and `..` or NUL rejected.
 *
 * @module
 */

const tdFatal = new TextDecoder("utf-8", { fatal: true });

/**
 * The components of a tar entry path: one leading `/` and all trailing `/` dropped, empty and `.`
 * components removed; `..` and NUL bytes are errors. The root (`/`, `./`) gives `[]`.
 * Non-UTF-8 names are errors too (composefs paths are handled as text here).
 *
 * @example
 * ```ts
 * normalizeTarPath("./etc//x/");   // ["etc", "x"]
 * normalizeTarPath("a/../b");      // throws: "..": path escapes …
 * ```
 */
export function normalizeTarPath(path: string | Uint8Array): string[] {
  let s: string;
  if (typeof path === "string") {
    s = path;
  } else {
    try {
      s = tdFatal.decode(path);
    } catch {
      throw new Error(`tar entry path is not valid UTF-8: ${JSON.stringify(new TextDecoder().decode(path))}`);
    }
  }
  if (s.includes("\0")) throw new Error(`tar entry path contains a NUL byte: ${JSON.stringify(s)}`);
  const out: string[] = [];
  for (const c of s.split("/")) {
    if (c === "" || c === ".") continue;
    if (c === "..") throw new Error(`tar entry path contains "..": ${JSON.stringify(s)}`);
    out.push(c);
  }
  return out;
}

/** The absolute form of a tar path (`/etc/x`, `/` for the root); same errors as {@link normalizeTarPath}. */
export function absoluteTarPath(path: string | Uint8Array): string {
  return "/" + normalizeTarPath(path).join("/");
}
