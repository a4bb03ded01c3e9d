import { describe, expect, it } from 'vitest';
import {
  backoffCapMs,
  cappedLeaseRefreshAt,
  latestRefreshAt,
  firstLeaseSchedule,
  FIRST_RETRY_SPREAD_FRACTION,
  nextRefreshAt,
  RETRY_SPREAD_FRACTION,
  retryDelayMs,
  schedulePolicy,
  type SchedulePolicy,
} from './schedule.ts';

const MIN = 60_000;
const policy: SchedulePolicy = {
  refreshFraction: 0.5,
  refreshJitter: 0.1,
  readyMarginMs: 6 * MIN,
  backoffInitialMs: 1_000,
  backoffMaxMs: 60_000,
};
const hourLease = { issuedAtMs: 0, expiresAtMs: 60 * MIN };

describe('nextRefreshAt', () => {
  it('refreshes at the configured fraction when the jitter draw is 0', () => {
    expect(nextRefreshAt(hourLease, policy, 0)).toBe(30 * MIN);
  });

  it('takes up to the jitter fraction of the lease off, never adds', () => {
    expect(nextRefreshAt(hourLease, policy, 0.999999)).toBeCloseTo(24 * MIN, -2);
    for (const r of [0, 0.25, 0.5, 0.75, 0.99]) {
      const t = nextRefreshAt(hourLease, policy, r);
      expect(t).toBeLessThanOrEqual(30 * MIN);
      expect(t).toBeGreaterThanOrEqual(24 * MIN);
    }
  });

  it('spreads a fleet: different draws give different times', () => {
    const times = new Set([0.1, 0.2, 0.3].map((r) => nextRefreshAt(hourLease, policy, r)));
    expect(times.size).toBe(3);
  });

  it('never plans past the margin plus slack, even with a late fraction', () => {
    const late = { ...policy, refreshFraction: 0.9, refreshJitter: 0 };
    const t = nextRefreshAt(hourLease, late, 0);
    // 60 min lease, 6 min margin, slack = min(60 s, 10% of 54 min) = 60 s.
    expect(t).toBe(60 * MIN - 6 * MIN - 60_000);
  });

  it('a lease no longer than the margin is refreshed on the fraction schedule, never at once', () => {
    // 5 min lease, 6 min margin: readiness is unreachable; refreshing at once would loop exchanges.
    expect(nextRefreshAt({ issuedAtMs: 1000, expiresAtMs: 1000 + 5 * MIN }, policy, 0.5)).toBe(
      1000 + 2.25 * MIN,
    );
  });

  it('never returns the issue time, even for a tiny lease and the largest jitter draw', () => {
    const tiny = { issuedAtMs: 0, expiresAtMs: 200 };
    const t = nextRefreshAt(
      tiny,
      { ...policy, readyMarginMs: 0, refreshFraction: 0.1, refreshJitter: 0.09 },
      0.999999,
    );
    expect(t).toBeGreaterThan(0);
  });

  it('is relative to the issue time', () => {
    const t0 = 1_700_000_000_000;
    expect(nextRefreshAt({ issuedAtMs: t0, expiresAtMs: t0 + 60 * MIN }, policy, 0)).toBe(t0 + 30 * MIN);
  });
});

describe('backoff', () => {
  it('doubles from the initial delay up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((f) => backoffCapMs(f, policy))).toEqual([
      1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000,
    ]);
  });

  it('survives absurd failure counts', () => {
    expect(backoffCapMs(10_000, policy)).toBe(60_000);
  });

  it('uses full jitter: the delay is the draw times the cap', () => {
    expect(retryDelayMs(4, policy, 0.5, 0, undefined)).toBe(4000);
    expect(retryDelayMs(4, policy, 0.25, 0, undefined)).toBe(2000);
  });

  it('has a floor so a zero draw cannot make a hot loop', () => {
    expect(retryDelayMs(1, policy, 0, 0, undefined)).toBe(100);
  });

  it('never sleeps past the point where the set on disk falls under the margin', () => {
    const now = 53.5 * MIN;
    // Margin crossed at 54 min: 30 s left, although the draw alone would sleep 59.4 s.
    const d = retryDelayMs(10, policy, 0.99, now, hourLease);
    expect(d).toBe(30_000);
    expect(now + d).toBe(hourLease.expiresAtMs - policy.readyMarginMs);
  });

  it('keeps backing off normally once the margin is already crossed', () => {
    expect(retryDelayMs(10, policy, 0.5, 58 * MIN, hourLease)).toBe(30_000);
  });
});

describe('retries while a set with plenty of life is on disk', () => {
  // Refreshed at 30 min of an hour lease: 24 min until the 6 min margin.
  const now = 30 * MIN;
  const untilMargin = 24 * MIN;

  it('the first retry is drawn over a sixteenth of the time left: a blip is ridden over within 90 s', () => {
    expect(FIRST_RETRY_SPREAD_FRACTION).toBe(1 / 16);
    expect(retryDelayMs(1, policy, 0.5, now, hourLease)).toBe(untilMargin / 16 / 2);
    for (const r of [0, 0.5, 0.999]) {
      expect(retryDelayMs(1, policy, r, now, hourLease)).toBeLessThan(90_000);
    }
  });

  it('without a set, or with one close to the margin, the first retry keeps the initial backoff', () => {
    expect(retryDelayMs(1, policy, 0.5, now, undefined)).toBe(500);
    // 10 s before the margin: a sixteenth is 0.6 s, less than the 1 s cap.
    const close = hourLease.expiresAtMs - policy.readyMarginMs - 10_000;
    expect(retryDelayMs(1, policy, 0.5, close, hourLease)).toBe(500);
  });

  it('later retries are drawn over a quarter of the time left before the margin', () => {
    expect(RETRY_SPREAD_FRACTION).toBe(0.25);
    expect(retryDelayMs(2, policy, 0.5, now, hourLease)).toBe(untilMargin * 0.25 * 0.5);
    expect(retryDelayMs(7, policy, 0.999, now, hourLease)).toBeCloseTo(untilMargin * 0.25 * 0.999, 6);
    // Far wider than the backoff cap: 6 minutes instead of 2 s for the second failure.
    expect(retryDelayMs(2, policy, 0.999, now, hourLease)).toBeGreaterThan(100 * backoffCapMs(2, policy));
  });

  it('spreads a fleet: uniform draws give delays uniform over the window', () => {
    const delays = Array.from({ length: 100 }, (_, i) => retryDelayMs(3, policy, i / 100, now, hourLease));
    const window = untilMargin * RETRY_SPREAD_FRACTION;
    for (let q = 0; q < 4; q++) {
      const inQuarter = delays.filter((d) => d >= (q * window) / 4 && d < ((q + 1) * window) / 4);
      expect(inQuarter).toHaveLength(25);
    }
  });

  it('the window shrinks as the set ages, never below the backoff cap', () => {
    // 3 min before the margin: a quarter is 45 s, and the cap at failure 7 is 60 s.
    const late = hourLease.expiresAtMs - policy.readyMarginMs - 3 * MIN;
    expect(retryDelayMs(7, policy, 0.5, late, hourLease)).toBe(30_000);
    expect(retryDelayMs(2, policy, 0.5, late, hourLease)).toBe(3 * MIN * 0.25 * 0.5);
  });

  it('never sleeps past the margin, and keeps the plain backoff without a set', () => {
    const d = retryDelayMs(30, policy, 0.999, 53.9 * MIN, hourLease);
    expect(53.9 * MIN + d).toBeLessThanOrEqual(hourLease.expiresAtMs - policy.readyMarginMs);
    expect(retryDelayMs(2, policy, 0.5, now, undefined)).toBe(1000);
    // A set already under the margin: plain backoff, it can only be fixed by succeeding.
    expect(retryDelayMs(2, policy, 0.5, 58 * MIN, hourLease)).toBe(1000);
  });

  it('every retry leaves at least three quarters of the time to the margin', () => {
    for (const f of [2, 3, 5, 8, 20]) {
      for (const r of [0, 0.3, 0.999]) {
        const t = now + retryDelayMs(f, policy, r, now, hourLease);
        expect(hourLease.expiresAtMs - policy.readyMarginMs - t).toBeGreaterThanOrEqual(
          untilMargin * 0.75 - 1,
        );
      }
    }
  });
});

describe('firstLeaseSchedule', () => {
  it('spreads the first refresh of a fleet over 20%..100% of the refresh fraction', () => {
    const first = firstLeaseSchedule(policy);
    expect(first.refreshJitter).toBeCloseTo(0.4);
    expect(nextRefreshAt(hourLease, first, 0)).toBe(30 * MIN);
    expect(nextRefreshAt(hourLease, first, 0.999999)).toBeCloseTo(6 * MIN, -2);
  });

  it('never narrows a jitter that is already wider', () => {
    expect(firstLeaseSchedule({ ...policy, refreshJitter: 0.45 }).refreshJitter).toBe(0.45);
  });
});

describe('cappedLeaseRefreshAt (a lease the STS ended at the token exp)', () => {
  // The token: issued at 0, expires at 60 min; the lease was acquired at 10 min and ends with the token.
  const token = { issuedAtMs: 0, expiresAtMs: 60 * MIN };
  const capped = { issuedAtMs: 10 * MIN, expiresAtMs: 60 * MIN };
  const normal = nextRefreshAt(capped, policy, 0); // half of the 50 min received: 35 min

  it('waits for the kubelet to replace the token (80% of its life), not the lease fraction', () => {
    expect(normal).toBe(35 * MIN);
    expect(cappedLeaseRefreshAt(capped, policy, normal, token)).toBe(48 * MIN);
  });

  it('never later than the margin rule allows', () => {
    const tight = { ...policy, readyMarginMs: 15 * MIN };
    const at = cappedLeaseRefreshAt(capped, tight, nextRefreshAt(capped, tight, 0), token);
    expect(at).toBe(latestRefreshAt(capped, tight));
    expect(at).toBeLessThan(48 * MIN);
  });

  it('never earlier than the normal schedule (a token already past 80% of its life)', () => {
    const old = { issuedAtMs: -100 * MIN, expiresAtMs: 60 * MIN };
    expect(cappedLeaseRefreshAt(capped, policy, normal, old)).toBe(normal);
  });

  it('without an iat: the latest moment the margin allows', () => {
    const noIat = { issuedAtMs: undefined, expiresAtMs: 60 * MIN };
    expect(cappedLeaseRefreshAt(capped, policy, normal, noIat)).toBe(latestRefreshAt(capped, policy));
  });

  it('a lease within the margin keeps the normal schedule', () => {
    const short = { issuedAtMs: 10 * MIN, expiresAtMs: 14 * MIN };
    const n = nextRefreshAt(short, policy, 0);
    expect(cappedLeaseRefreshAt(short, policy, n, { issuedAtMs: 0, expiresAtMs: 14 * MIN })).toBe(n);
  });
});

describe('schedulePolicy', () => {
  it('keeps the fractions and turns the configured seconds into milliseconds', () => {
    expect(
      schedulePolicy({
        refreshFraction: 0.5,
        refreshJitter: 0.1,
        readyMarginSeconds: 360,
        backoffInitialSeconds: 1,
        backoffMaxSeconds: 60,
      }),
    ).toEqual(policy);
  });
});
