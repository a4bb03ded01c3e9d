import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { LeaseEvent } from '../lease-events.ts';

/** The only place metric names and labels are spelled. */
export interface SidecarMetrics {
  readonly registry: Registry;
  observe(event: LeaseEvent): void;
  observeTokenRotation(): void;
}

export function createMetrics(options: { now: () => number; isReady: () => boolean }): SidecarMetrics {
  const registry = new Registry();
  let lastSuccessMs: number | undefined;

  const expiry = new Gauge({
    name: 'sts_sidecar_credentials_expiry_timestamp_seconds',
    help: 'Expiry of the credential set on disk (Unix seconds); 0 when none is on disk.',
    registers: [registry],
  });
  const refreshes = new Counter({
    name: 'sts_sidecar_refreshes_total',
    help: 'Lease attempts and removals by outcome (acquired, renewed, denied, failed, expired, revoked) and reason (error code or ok).',
    labelNames: ['outcome', 'reason'] as const,
    registers: [registry],
  });
  const calls = new Histogram({
    name: 'sts_sidecar_request_duration_seconds',
    help: 'Duration of outbound calls by target (flex_auth, sts, idp) and outcome (ok or error code).',
    labelNames: ['target', 'outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  new Gauge({
    name: 'sts_sidecar_seconds_since_last_success',
    help: 'Seconds since the last credential set was written; -1 before the first.',
    registers: [registry],
    collect() {
      this.set(lastSuccessMs === undefined ? -1 : (options.now() - lastSuccessMs) / 1000);
    },
  });
  new Gauge({
    name: 'sts_sidecar_ready',
    help: '1 while a set with more than the readiness margin left is on disk.',
    registers: [registry],
    collect() {
      this.set(options.isReady() ? 1 : 0);
    },
  });
  const rotations = new Counter({
    name: 'sts_sidecar_token_rotations_total',
    help: 'Projected token rotations noticed.',
    registers: [registry],
  });

  return {
    registry,
    observeTokenRotation: () => rotations.inc(),
    observe(event) {
      switch (event.event) {
        case 'lease.acquired':
        case 'lease.renewed':
          lastSuccessMs = options.now();
          expiry.set(event.expires_at_ms / 1000);
          refreshes.inc({ outcome: event.event.slice(6), reason: 'ok' });
          break;
        case 'lease.denied':
          refreshes.inc({ outcome: 'denied', reason: event.code });
          break;
        case 'lease.failed':
          refreshes.inc({ outcome: 'failed', reason: event.code });
          break;
        case 'lease.expired':
          expiry.set(0);
          refreshes.inc({ outcome: 'expired', reason: 'expired' });
          break;
        case 'lease.revoked':
          expiry.set(0);
          refreshes.inc({ outcome: 'revoked', reason: event.reason });
          break;
        case 'call.finished':
          calls.observe({ target: event.target, outcome: event.outcome }, event.seconds);
          break;
        default:
          break;
      }
    },
  };
}
