// Issue 5.3: flex-auth unreachable, slow beyond the deadline, or answering 5xx for longer than a lease.
import { describe, expect, it } from 'vitest';
import { checkOutage } from './support/outage-check.ts';
import { runOutage, type OutageKind } from './support/outage.ts';

describe('flex-auth outage longer than the lease', () => {
  for (const kind of ['unreachable', 'slow', '5xx'] as OutageKind[]) {
    it(`${kind}: set kept until expiry, not ready before the margin, removed at expiry, recovered within the backoff cap`, async () => {
      const r = await runOutage('flex-auth', kind);
      console.info(`[reliability] outage ${JSON.stringify(r)}`);
      checkOutage(r, expect);
      expect(r.codes).toEqual(['ERR_POLICY_UNAVAILABLE']);
      // No decision, no exchange: the STS is never asked while flex-auth is down.
      expect(r.stsRequests).toBe(0);
      if (kind !== 'unreachable') expect(r.flexAuthRequests).toBeLessThanOrEqual(r.maxAttempts);
    });
  }
});
