/**
 * Garbage collection on request, where the program knows better than V8's heuristics: memory held
 * outside V8's heap (chunk buffers) and phase boundaries of a large import. Needs `--expose-gc`,
 * which the `bootcfs` task, the compiled binary (scripts/compile) and the tests pass; without it
 * these do nothing. And handing freed malloc memory back to the kernel while an import runs.
 *
 * @module
 */
import { mallocTrim } from "../../ffi/libc.ts";

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

/**
 * Hands the memory free in glibc's arenas back to the kernel every `ms` until disposed (`using`).
 * The backing stores of the ArrayBuffers V8 collects are freed into those arenas, between live
 * allocations, where they stay resident: during a Debian image's pull the main arena grew to
 * ~38 MiB, ~8 MiB of it free. Trimming five times a second lowers that pull's peak by ~8 MiB at
 * no measurable cost.
 */
export function trimmingMalloc(ms = 200): Disposable {
  const timer = setInterval(mallocTrim, ms);
  Deno.unrefTimer(timer);
  return { [Symbol.dispose]: () => clearInterval(timer) };
}
