import {
  applyHealthEvent,
  describeHealth,
  initialHealth,
  isLive,
  isReady,
  type HealthEvent,
  type HealthState,
} from '../domain/health.ts';
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

/**
 * The health of every lease of the daemon: one tracker per lease, fed the events that name it. Ready only
 * when every lease is (each has a set with more than the margin left); live only when every loop keeps its
 * promises. The environment-only lease (no name) answers exactly as a single tracker does.
 */
export interface LeasesHealth {
  readonly subscriber: LeaseSubscriber;
  isReady(nowMs: number, marginMs: number): boolean;
  isLive(nowMs: number, graceMs: number): boolean;
  /** /readyz's body: the single lease's view, or `{ ready, leases: { <name>: view } }` for named leases. */
  readyBody(nowMs: number, marginMs: number): Record<string, unknown>;
  /** One lease's readiness (metrics); undefined names the environment-only lease. */
  isLeaseReady(name: string | undefined, nowMs: number, marginMs: number): boolean;
  stopped(atMs: number): void;
}

export function createLeasesHealth(now: () => number, names: readonly (string | undefined)[]): LeasesHealth {
  const trackers = new Map(names.map((n) => [n, createHealthTracker(now)] as const));
  const all = [...trackers.values()];
  const named = names[0] !== undefined;
  return {
    subscriber: (event) => trackers.get(event.lease)?.subscriber(event),
    isReady: (nowMs, marginMs) => all.every((t) => isReady(t.state(), nowMs, marginMs)),
    isLive: (nowMs, graceMs) => all.every((t) => isLive(t.state(), nowMs, graceMs)),
    readyBody: (nowMs, marginMs) =>
      named
        ? {
            ready: all.every((t) => isReady(t.state(), nowMs, marginMs)),
            leases: Object.fromEntries(
              [...trackers].map(([n, t]) => [n, describeHealth(t.state(), nowMs, marginMs)]),
            ),
          }
        : describeHealth(all[0]!.state(), nowMs, marginMs),
    isLeaseReady: (name, nowMs, marginMs) => {
      const t = trackers.get(name);
      return t !== undefined && isReady(t.state(), nowMs, marginMs);
    },
    stopped: (atMs) => all.forEach((t) => t.stopped(atMs)),
  };
}
