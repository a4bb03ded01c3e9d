import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { LeaseEvent } from '../lease-events.ts';

/** The only place metric names and labels are spelled. */
export interface SidecarMetrics {
  readonly registry: Registry;
  observe(event: LeaseEvent): void;
  observeTokenRotation(): void;
}

/**
 * `leases`: the named leases (config file). Then every lease metric carries a `lease` label, bounded by the
 * configuration; without them (the environment-only lease) names and labels stay exactly as they were.
 * `isReady` is asked per lease (undefined for the environment-only one).
 */
export function createMetrics(options: {
  now: () => number;
  isReady: (lease: string | undefined) => boolean;
  leases?: readonly string[];
}): SidecarMetrics {
  const registry = new Registry();
  const leases: readonly (string | undefined)[] = options.leases?.length ? options.leases : [undefined];
  const named = leases[0] !== undefined;
  const leaseLabel: string[] = named ? ['lease'] : [];
  const of = (lease: string | undefined): { lease?: string } =>
    named && lease !== undefined ? { lease } : {};
  const lastSuccessMs = new Map<string | undefined, number>();

  const expiry = new Gauge({
    name: 'sts_sidecar_credentials_expiry_timestamp_seconds',
    help: 'Expiry of the credential set on disk (Unix seconds); 0 when none is on disk.',
    labelNames: leaseLabel,
    registers: [registry],
  });
  const refreshes = new Counter({
    name: 'sts_sidecar_refreshes_total',
    help: 'Lease attempts and removals by outcome (acquired, renewed, denied, failed, expired, revoked) and reason (error code or ok).',
    labelNames: [...leaseLabel, 'outcome', 'reason'],
    registers: [registry],
  });
  const calls = new Histogram({
    name: 'sts_sidecar_request_duration_seconds',
    help: 'Duration of outbound calls by target (flex_auth, sts, idp) and outcome (ok or error code).',
    labelNames: [...leaseLabel, 'target', 'outcome'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  new Gauge({
    name: 'sts_sidecar_seconds_since_last_success',
    help: 'Seconds since the last credential set was written; -1 before the first.',
    labelNames: leaseLabel,
    registers: [registry],
    collect() {
      for (const lease of leases) {
        const last = lastSuccessMs.get(lease);
        this.set(of(lease), last === undefined ? -1 : (options.now() - last) / 1000);
      }
    },
  });
  new Gauge({
    name: 'sts_sidecar_ready',
    help: '1 while a set with more than the readiness margin left is on disk.',
    labelNames: leaseLabel,
    registers: [registry],
    collect() {
      for (const lease of leases) this.set(of(lease), options.isReady(lease) ? 1 : 0);
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
      const lease = of(event.lease);
      switch (event.event) {
        case 'lease.acquired':
        case 'lease.renewed':
          lastSuccessMs.set(event.lease, options.now());
          expiry.set(lease, event.expires_at_ms / 1000);
          refreshes.inc({ ...lease, outcome: event.event.slice(6), reason: 'ok' });
          break;
        case 'lease.denied':
          refreshes.inc({ ...lease, outcome: 'denied', reason: event.code });
          break;
        case 'lease.failed':
          refreshes.inc({ ...lease, outcome: 'failed', reason: event.code });
          break;
        case 'lease.expired':
          expiry.set(lease, 0);
          refreshes.inc({ ...lease, outcome: 'expired', reason: 'expired' });
          break;
        case 'lease.revoked':
          expiry.set(lease, 0);
          refreshes.inc({ ...lease, outcome: 'revoked', reason: event.reason });
          break;
        case 'call.finished':
          calls.observe({ ...lease, target: event.target, outcome: event.outcome }, event.seconds);
          break;
        default:
          break;
      }
    },
  };
}
