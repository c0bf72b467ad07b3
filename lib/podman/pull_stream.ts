/**
 * The NDJSON reply of libpod's `POST /libpod/images/pull` (test-rig.md §6, bootc-layout.md §5.3):
 * line splitting and the meaning of each line, without any I/O.
 *
 * @module
 */

/** What one line of a pull stream means, for a progress display. */
export type PullEvent =
  /** Free text from podman (`Trying to pull …`, `Writing manifest …`). */
  | { kind: "message"; text: string }
  /**
   * A blob being copied: podman 4.3 only says "Copying blob <digest>" (no bytes: `current` and
   * `total` undefined); podman ≥ 5.9 with `pullProgress=true` reports bytes.
   */
  | {
    kind: "blob";
    digest: string;
    status: "copying" | "pulling" | "done" | "skipped";
    current?: number;
    total?: number;
  }
  /** The image config being written. */
  | { kind: "config"; digest: string };

/** The end of a successful pull: the image ids (config digest hex, no `sha256:`). */
export interface PullResult {
  id: string;
  images: string[];
}

/** One parsed line: an event, the final result, or an in-band error. */
export type PullLine =
  | { type: "event"; event: PullEvent }
  | { type: "result"; result: PullResult }
  | { type: "error"; message: string }
  | { type: "ignored" };

interface RawLine {
  stream?: unknown;
  error?: unknown;
  errorDetail?: { message?: unknown };
  id?: unknown;
  images?: unknown;
  pullProgress?: { status?: unknown; current?: unknown; total?: unknown; progressComponentID?: unknown };
}

const PULL_PROGRESS_STATUS: Readonly<Record<string, "pulling" | "done" | "skipped">> = {
  pulling: "pulling",
  success: "done",
  skipped: "skipped",
};

/**
 * Interprets one JSON line of a pull stream.
 *
 * @example
 * ```ts
 * parsePullLine('{"stream":"Copying blob sha256:3fdb…\\n"}');
 * // { type: "event", event: { kind: "blob", digest: "sha256:3fdb…", status: "copying" } }
 * ```
 */
export function parsePullLine(line: string): PullLine {
  let raw: RawLine;
  try {
    raw = JSON.parse(line);
  } catch {
    throw new Error(`podman sent a line that is not JSON: ${line.slice(0, 200)}`);
  }
  if (typeof raw.error === "string" && raw.error !== "") return { type: "error", message: raw.error };
  if (typeof raw.errorDetail?.message === "string") return { type: "error", message: raw.errorDetail.message };
  if (Array.isArray(raw.images) && typeof raw.id === "string") {
    return { type: "result", result: { id: raw.id, images: raw.images.map(String) } };
  }
  const p = raw.pullProgress;
  if (p && typeof p.progressComponentID === "string" && p.progressComponentID !== "") {
    const status = PULL_PROGRESS_STATUS[String(p.status)];
    if (!status) return { type: "ignored" };
    const total = typeof p.total === "number" && p.total > 0 ? p.total : undefined;
    const current = typeof p.current === "number" ? p.current : undefined;
    return { type: "event", event: { kind: "blob", digest: p.progressComponentID, status, current, total } };
  }
  if (typeof raw.stream === "string") {
    const text = raw.stream.trimEnd();
    const copy = /^Copying (blob|config) (\S+)/.exec(text);
    if (copy?.[1] === "blob") return { type: "event", event: { kind: "blob", digest: copy[2], status: "copying" } };
    if (copy?.[1] === "config") return { type: "event", event: { kind: "config", digest: copy[2] } };
    return text === "" ? { type: "ignored" } : { type: "event", event: { kind: "message", text } };
  }
  return { type: "ignored" };
}

/** Splits a byte stream into its non-empty lines (the last line may lack its `\n`). */
export async function* ndjsonLines(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buf = "";
  for await (const text of body.pipeThrough(new TextDecoderStream())) {
    buf += text;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line !== "") yield line;
    }
  }
  if (buf.trim() !== "") yield buf.trim();
}
