/**
 * Command results on stdout: human lines, tables, or one JSON document with `--json`.
 *
 * @module
 */

const enc = new TextEncoder();

/** Where a command writes its results (never progress or logs: those go to stderr). */
export interface Output {
  /** Writes one line of human-readable text. */
  line(text: string): void;
  /** Writes raw text (no newline added); for dumps and other exact formats. */
  write(text: string | Uint8Array): void;
  /** Writes `value` as pretty JSON with a trailing newline. */
  json(value: unknown): void;
  /** Writes rows as left-aligned columns separated by two spaces. */
  table(header: string[], rows: string[][]): void;
}

/** Column-aligned text of `header` and `rows`. */
export function formatTable(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  return all.map((r) => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i])).join("  ").trimEnd())
    .join("\n") + "\n";
}

/** An {@link Output} that writes synchronously to a file descriptor-like sink. */
export function createOutput(sink: { writeSync(p: Uint8Array): number } = Deno.stdout): Output {
  const writeAll = (b: Uint8Array) => {
    for (let off = 0; off < b.length;) off += sink.writeSync(b.subarray(off));
  };
  const write = (t: string | Uint8Array) => writeAll(typeof t === "string" ? enc.encode(t) : t);
  return {
    line: (text) => write(text + "\n"),
    write,
    json: (value) => write(JSON.stringify(value, null, 2) + "\n"),
    table: (header, rows) => write(formatTable(header, rows)),
  };
}
