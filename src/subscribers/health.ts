import { applyHealthEvent, initialHealth, type HealthEvent, type HealthState } from '../domain/health.ts';
import type { LeaseEvent, LeaseSubscriber } from '../lease-events.ts';

/** The health state, kept current from lease events; the health server and metrics read it. */
export interface HealthTracker {
  readonly subscriber: LeaseSubscriber;
  state(): HealthState;
  stopped(atMs: number): void;
}

function toHealthEvent(event: LeaseEvent, nowMs: number): HealthEvent | undefined {
  switch (event.event) {
    case 'loop.attempt':
      return { type: 'attempt-started', atMs: event.at_ms, deadlineMs: event.deadline_ms };
    case 'loop.sleep':
      return { type: 'sleeping', atMs: event.at_ms, untilMs: event.until_ms };
    case 'lease.acquired':
    case 'lease.renewed':
      return { type: 'lease-written', atMs: nowMs, expiresAtMs: event.expires_at_ms };
    case 'lease.failed':
    case 'lease.denied':
      return { type: 'attempt-failed', atMs: nowMs, code: event.code };
    case 'lease.expired':
    case 'lease.revoked':
      return { type: 'lease-removed', atMs: nowMs };
    default:
      return undefined;
  }
}

export function createHealthTracker(now: () => number): HealthTracker {
  let health = initialHealth(now());
  return {
    subscriber: (event) => {
      const h = toHealthEvent(event, now());
      if (h) health = applyHealthEvent(health, h);
    },
    state: () => health,
    stopped: (atMs) => {
      health = applyHealthEvent(health, { type: 'stopped', atMs });
    },
  };
}
