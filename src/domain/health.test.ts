import { describe, expect, it } from 'vitest';
import {
  applyHealthEvent,
  describeHealth,
  initialHealth,
  isLive,
  isReady,
  type HealthEvent,
} from './health.ts';

const margin = 360_000;

function run(events: HealthEvent[]) {
  return events.reduce(applyHealthEvent, initialHealth(0));
}

describe('readiness', () => {
  it('is false before anything was written', () => {
    expect(isReady(initialHealth(0), 0, margin)).toBe(false);
  });

  it('is true with a written set beyond the margin and false from the margin on', () => {
    const s = run([{ type: 'lease-written', atMs: 0, expiresAtMs: 3_600_000 }]);
    expect(isReady(s, 0, margin)).toBe(true);
    expect(isReady(s, 3_600_000 - margin - 1, margin)).toBe(true);
    expect(isReady(s, 3_600_000 - margin, margin)).toBe(false);
  });

  it('is false after the set is removed, and after stop', () => {
    const written: HealthEvent = { type: 'lease-written', atMs: 0, expiresAtMs: 3_600_000 };
    expect(isReady(run([written, { type: 'lease-removed', atMs: 1 }]), 2, margin)).toBe(false);
    expect(isReady(run([written, { type: 'stopped', atMs: 1 }]), 2, margin)).toBe(false);
  });

  it('a failure keeps the set (and readiness) it does not remove', () => {
    const s = run([
      { type: 'lease-written', atMs: 0, expiresAtMs: 3_600_000 },
      { type: 'attempt-failed', atMs: 10, code: 'ERR_STS_UNREACHABLE' },
    ]);
    expect(isReady(s, 20, margin)).toBe(true);
    expect(describeHealth(s, 20, margin)).toMatchObject({
      consecutive_failures: 1,
      last_error: 'ERR_STS_UNREACHABLE',
    });
  });

  it('a success clears the failure count', () => {
    const s = run([
      { type: 'attempt-failed', atMs: 10, code: 'ERR_STS_UNREACHABLE' },
      { type: 'attempt-failed', atMs: 20, code: 'ERR_STS_UNREACHABLE' },
      { type: 'lease-written', atMs: 30, expiresAtMs: 3_600_000 },
    ]);
    expect(s.consecutiveFailures).toBe(0);
    expect(s.lastErrorCode).toBeUndefined();
  });
});

describe('liveness', () => {
  it('is live while the loop keeps its promised wake-up', () => {
    const s = run([{ type: 'sleeping', atMs: 0, untilMs: 1_800_000 }]);
    expect(isLive(s, 1_800_000 + 59_000, 60_000)).toBe(true);
    expect(isLive(s, 1_800_000 + 61_000, 60_000)).toBe(false);
  });

  it('an attempt in flight is judged by its deadline', () => {
    const s = run([{ type: 'attempt-started', atMs: 0, deadlineMs: 30_000 }]);
    expect(isLive(s, 80_000, 60_000)).toBe(true);
    expect(isLive(s, 100_000, 60_000)).toBe(false);
  });

  it('is not live once stopped', () => {
    expect(isLive(run([{ type: 'stopped', atMs: 0 }]), 0, 60_000)).toBe(false);
  });
});
