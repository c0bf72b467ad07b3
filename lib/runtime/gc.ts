/**
 * Garbage collection on request, where the program knows better than V8's heuristics: memory held
 * outside V8's heap (chunk buffers) and phase boundaries of a large import. Needs `--expose-gc`,
 * which the `bootcfs` task, the compiled binary (scripts/compile) and the tests pass; without it
 * these do nothing.
 *
 * @module
 */

type Gc = (opts?: { type: "minor" | "major" }) => void;

function gc(): Gc | undefined {
  return (globalThis as { gc?: Gc }).gc;
}

/**
 * A young-generation collection (about a millisecond): frees the buffers of chunks that died
 * since the last one. Dead ArrayBuffers cost V8 almost nothing on its heap, so a thread that
 * allocates little else holds 60 MiB and more of them before V8 collects on its own.
 */
export function minorGc(): void {
  gc()?.({ type: "minor" });
}

/**
 * A full collection, between two phases of work: what the first left behind is freed before the
 * second allocates, so the heap does not grow to hold both (10 MiB less at the peak of a Debian
 * image's import, for ~20 ms).
 */
export function fullGc(): void {
  gc()?.({ type: "major" });
}
