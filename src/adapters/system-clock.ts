import { setTimeout as delay } from 'node:timers/promises';
import type { Clock } from '../ports.ts';

/** Wall-clock time and real timers. One timer per sleep: no polling between refreshes. */
export const systemClock: Clock = {
  now: () => Date.now(),
  async sleep(ms, signal) {
    if (signal.aborted) return;
    try {
      await delay(Math.max(0, ms), undefined, { signal });
    } catch (err) {
      if ((err as Error).name !== 'AbortError') throw err;
    }
  },
};
