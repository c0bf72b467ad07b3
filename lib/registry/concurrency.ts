/**
 * Bounded concurrency and retry backoff for registry transfers.
 *
 * @module
 */

/**
 * Runs `fn` on every item with at most `limit` calls in flight and returns the results in input
 * order. The first failure rejects the whole call (calls already running finish in the
 * background; no new ones start).
 *
 * @example
 * ```ts
 * const sizes = await mapConcurrent(layers, 4, async (l) => (await fetchLayer(l)).length);
 * ```
 */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  if (!(limit >= 1)) throw new Error(`concurrency limit must be at least 1, got ${limit}`);
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i], i);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** How often and how patiently to retry a transient failure. */
export interface RetryPolicy {
  /** Total tries including the first (default 5). */
  attempts: number;
  /** Delay before the second try in ms; doubles each time (default 250). */
  baseDelayMs: number;
  /** Upper bound of one delay in ms (default 4000). */
  maxDelayMs: number;
}

/** The retry policy used when none is given. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 250, maxDelayMs: 4000 };

/** The delay before retry number `retry` (1 = first retry): exponential with ±25% jitter. */
export function backoffDelay(policy: RetryPolicy, retry: number): number {
  const base = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

/** Waits `ms` milliseconds, or rejects early when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
