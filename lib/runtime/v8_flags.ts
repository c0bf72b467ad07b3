/**
 * The V8 flags bootcfs runs with: the `bootcfs` task in deno.json and the binary of
 * scripts/compile carry the same string (a unit test holds them to it), and whatever runs
 * `deno run main.ts` itself (tests, bench, demo) passes {@link V8_FLAGS}.
 *
 * - `--max-semi-space-size=2`: a 2 MiB young generation. V8 lets each semi-space grow to 16 MiB
 *   or more; building a tree allocates mostly short-lived objects, so a large nursery only adds
 *   resident pages (mkcomposefs of 100k entries 257 → 191 MiB, at no cost in time).
 * - `--expose-gc`: imports ask for a collection where they know better than V8 (lib/runtime/gc.ts).
 * - `--no-opt`: no TurboFan; Maglev still compiles hot functions. An import's hot loops are native
 *   (inflate, hashes, syscalls), and the optimizing compiler's background work cost the direct
 *   pull of the Debian bench image 0.4 s of CPU and 8 MiB of peak memory for no gain in time
 *   (6 alternating runs: 4.12 → 3.98 s, 144 → 136 MiB).
 *
 * @module
 */

/** The flags, as `--v8-flags` takes them. */
export const V8_FLAGS = "--max-semi-space-size=2,--expose-gc,--no-opt";
