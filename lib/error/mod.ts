/**
 * Errors with a context chain. Lower layers throw plain errors naming the cause; callers wrap them
 * with what they were doing, and the CLI prints the chain on one line:
 * `error: pulling docker://x: layer sha256:…: digest mismatch`.
 *
 * @module
 */

/** An error that adds "what was being done" in front of its cause. */
export class ContextError extends Error {
  constructor(context: string, cause: unknown) {
    super(context, { cause });
    this.name = "ContextError";
  }
}

/** A wrong command line: the CLI exits with status 2 and points at `--help`. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * Runs `fn`, and if it throws, rethrows the error wrapped in `context`.
 *
 * @example
 * ```ts
 * const text = await withContext(`reading ${path}`, () => Deno.readTextFile(path));
 * ```
 */
export async function withContext<T>(context: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw new ContextError(context, e);
  }
}

/** The same as {@link withContext} for synchronous code. */
export function withContextSync<T>(context: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw new ContextError(context, e);
  }
}

/**
 * The whole chain of an error as one line: `context: context: cause`, each message once. When
 * cleaning up after a failure failed too (a `SuppressedError` of `using`), the failure comes first
 * and the cleanup's error after it: `…: cause; while cleaning up: …`.
 */
export function errorChain(e: unknown): string {
  const parts: string[] = [];
  let cur: unknown = e;
  for (let depth = 0; cur !== undefined && depth < 32; depth++) {
    if (cur instanceof SuppressedError) {
      parts.push(`${errorChain(cur.suppressed)}; while cleaning up: ${errorChain(cur.error)}`);
      break;
    }
    if (cur instanceof Error) {
      // An error that quotes its cause (`new Error(`reading x: ${e.message}`, { cause: e })`) says it once.
      const outer = parts.at(-1);
      if (outer === undefined || (outer !== cur.message && !outer.endsWith(`: ${cur.message}`))) {
        parts.push(cur.message);
      }
      cur = cur.cause;
    } else {
      parts.push(String(cur));
      break;
    }
  }
  return parts.filter((p) => p !== "").join(": ");
}

/** True if `e` or anything in its cause chain is a {@link UsageError}. */
export function isUsageError(e: unknown): boolean {
  for (let cur = e, d = 0; cur instanceof Error && d < 32; cur = cur.cause, d++) {
    if (cur instanceof UsageError) return true;
  }
  return false;
}
