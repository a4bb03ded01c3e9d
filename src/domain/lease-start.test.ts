import { describe, expect, it } from 'vitest';
import { LEASE_START_SLOT_MS, leaseStartDelayMs } from './lease-start.ts';

describe('leaseStartDelayMs', () => {
  it('starts the first lease at once and every other lease inside its own slot', () => {
    expect(leaseStartDelayMs(0, 0.99)).toBe(0);
    for (const r of [0, 0.5, 0.999]) {
      for (const i of [1, 2, 5]) {
        const d = leaseStartDelayMs(i, r);
        expect(d).toBeGreaterThanOrEqual(i * LEASE_START_SLOT_MS);
        expect(d).toBeLessThan((i + 1) * LEASE_START_SLOT_MS);
      }
    }
  });

  it('no two leases of a pod share a slot, whatever the draws', () => {
    const delays = [0, 1, 2, 3].map((i) => leaseStartDelayMs(i, i % 2 === 0 ? 0.999 : 0));
    for (let i = 1; i < delays.length; i++) expect(delays[i]! - delays[i - 1]!).toBeGreaterThan(0);
  });
});
