import type { ExpectStatic } from 'vitest';
import { OUTAGE_SETTINGS, type OutageResult } from './outage.ts';

/** The failure semantics every outage must show. */
export function checkOutage(r: OutageResult, expect: ExpectStatic): void {
  const s = OUTAGE_SETTINGS;
  expect(r.successesDuringOutage, 'no exchange can succeed during the outage').toBe(0);
  // The valid set stays until its expiry.
  expect(r.fileSamplesBeforeExpiry).toBeGreaterThan(20);
  expect(r.setLostEarly, 'set removed or changed before its expiry').toBe(0);
  expect(r.keptUntilLogged, 'lease.failed says until when the set is kept').toBe(true);
  // Readiness turns false when the margin is crossed, not later (50 ms polling, 150 ms tolerance).
  expect(r.notReadyEarly).toBe(0);
  expect(r.readyDroppedBeforeExpiryMs).toBeGreaterThanOrEqual(s.readyMarginSeconds * 1000 - 150);
  expect(r.readyDroppedBeforeExpiryMs).toBeLessThanOrEqual(s.readyMarginSeconds * 1000 + 300);
  // The set is removed at expiry. Today an attempt in flight at the expiry instant delays the removal
  // until it ends (at most the request deadline here); see 'expiry while a slow attempt is in flight'.
  expect(r.removalLateMs).toBeGreaterThanOrEqual(-300);
  expect(r.removalLateMs).toBeLessThanOrEqual(300 + (r.kind === 'slow' ? r.requestTimeoutSeconds * 1000 : 0));
  expect(r.setAfterExpiry, 'a set was still visible after lease.expired').toBe(0);
  // Recovery within the backoff cap (plus, for a slow service, the deadline of the attempt in flight).
  const recoveryBound =
    (s.backoffMaxSeconds + (r.kind === 'slow' ? r.requestTimeoutSeconds : 0)) * 1000 + 500;
  expect(r.recoveryMs).toBeLessThanOrEqual(recoveryBound);
  // Bounded retry rate: at most twice what full-jitter backoff predicts, and it does keep trying.
  expect(r.failedAttempts).toBeLessThanOrEqual(r.maxAttempts);
  expect(r.failedAttempts).toBeGreaterThanOrEqual(r.minAttempts);
}
