import v8 from 'node:v8';
import vm from 'node:vm';
import type { LeaseEvent } from '../lease-events.ts';

/** Options of {@link createHeapCollector}; the defaults are what the daemon uses. */
export interface HeapCollectorOptions {
  /** A forced collection is skipped when the previous one was less than this long ago. */
  readonly minIntervalMs?: number;
  readonly now?: () => number;
  /** Runs the collection after the current work; the default defers it with setImmediate. */
  readonly defer?: (run: () => void) => void;
  /** The collection itself; the default is V8's full GC (see {@link fullGc}). */
  readonly gc?: () => void;
}

let cachedGc: (() => void) | undefined;

/**
 * V8's full garbage collection without starting Node with --expose-gc (a flag that changes V8's flag
 * hash, so Node would drop its built-in code cache and the startup snapshot would not load): the flag is
 * set for as long as it takes to make a context that has `gc`, then unset again.
 */
export function fullGc(): void {
  if (!cachedGc) {
    v8.setFlagsFromString('--expose-gc');
    try {
      cachedGc = vm.runInNewContext('gc') as () => void;
    } finally {
      v8.setFlagsFromString('--no-expose-gc');
    }
  }
  cachedGc();
}

/**
 * A lease-event subscriber that runs a full GC after each credential set is written. Why: a process
 * that allocates a little and then waits never collects again, and V8's memory reducer then polls every
 * 8 s for as long as the process idles (10-12 wake-ups a minute). After a full collection the reducer
 * finishes within about 11 s and the process sleeps until its next refresh; the heap is also left
 * compact for the hour it idles (docs/benchmarks.md).
 */
export function createHeapCollector(options: HeapCollectorOptions = {}): (event: LeaseEvent) => void {
  const minIntervalMs = options.minIntervalMs ?? 5_000;
  const now = options.now ?? Date.now;
  const defer = options.defer ?? ((run) => void setImmediate(run));
  const gc = options.gc ?? fullGc;
  let lastMs = -Infinity;
  let broken = false;
  // Deferred work runs outside the fan-out's error isolation. A GC that cannot be had costs only idle
  // wake-ups, never credentials, so a failure turns the collector off instead of ending the process.
  const collect = () => {
    try {
      gc();
    } catch {
      broken = true;
    }
  };
  return (event) => {
    if (broken || (event.event !== 'lease.acquired' && event.event !== 'lease.renewed')) return;
    const t = now();
    if (t - lastMs < minIntervalMs) return;
    lastMs = t;
    defer(collect);
  };
}
