import { describe, expect, it } from 'vitest';
import { createHeapCollector, fullGc } from './heap.ts';
import type { LeaseEvent } from '../lease-events.ts';

const written = (event: 'lease.acquired' | 'lease.renewed') => ({ event }) as unknown as LeaseEvent;
const other = (event: string) => ({ event }) as unknown as LeaseEvent;

describe('createHeapCollector', () => {
  it('collects after each written set, deferred, and not for other events', () => {
    let now = 0;
    const deferred: (() => void)[] = [];
    let runs = 0;
    const collect = createHeapCollector({
      now: () => now,
      defer: (run) => deferred.push(run),
      gc: () => runs++,
    });
    for (const e of ['lease.failed', 'lease.denied', 'lease.expired', 'loop.sleep', 'call.finished'])
      collect(other(e));
    expect(deferred).toHaveLength(0);
    collect(written('lease.acquired'));
    expect(runs).toBe(0);
    deferred.splice(0).forEach((r) => r());
    expect(runs).toBe(1);
    now += 60_000;
    collect(written('lease.renewed'));
    deferred.splice(0).forEach((r) => r());
    expect(runs).toBe(2);
  });

  it('skips a collection within the minimum interval of the last one (fast refresh loops)', () => {
    let now = 0;
    let runs = 0;
    const collect = createHeapCollector({
      now: () => now,
      defer: (r) => r(),
      gc: () => runs++,
      minIntervalMs: 5_000,
    });
    collect(written('lease.acquired'));
    now += 4_999;
    collect(written('lease.renewed'));
    expect(runs).toBe(1);
    now += 1;
    collect(written('lease.renewed'));
    expect(runs).toBe(2);
  });

  it('a collection that throws turns the collector off instead of escaping the deferred callback', () => {
    let now = 0;
    let tries = 0;
    const collect = createHeapCollector({
      now: () => now,
      defer: (r) => r(),
      gc: () => {
        tries++;
        throw new TypeError('gc is not a function');
      },
    });
    expect(() => collect(written('lease.acquired'))).not.toThrow();
    now += 60_000;
    collect(written('lease.renewed'));
    expect(tries).toBe(1);
  });

  it('fullGc runs a real full collection without --expose-gc, and leaves gc unexposed', async () => {
    expect(typeof (globalThis as { gc?: unknown }).gc).toBe('undefined');
    const weak = (() => new WeakRef({ big: new Array(1000).fill(1) }))();
    // A WeakRef keeps its target alive until the current job ends.
    await new Promise((r) => setImmediate(r));
    fullGc();
    fullGc();
    expect(weak.deref()).toBeUndefined();
    expect(typeof (globalThis as { gc?: unknown }).gc).toBe('undefined');
  });
});
