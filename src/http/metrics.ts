import type { LeaseEvent } from '../lease-events.ts';

/** The only place metric names and labels are spelled. */
export interface SidecarMetrics {
  /** The Prometheus exposition of every metric (loads prom-client on first use). */
  render(): Promise<{ contentType: string; body: string }>;
  observe(event: LeaseEvent): void;
  observeTokenRotation(): void;
}

/**
 * What is recorded before prom-client is loaded. prom-client and the built-ins it loads (cluster,
 * child_process, worker_threads, perf_hooks) cost about 5 MB of RSS, most of it private: a pod nobody
 * scrapes never pays it (docs/benchmarks.md, issue 21). Until the first scrape the events are kept as they
 * came and replayed in order; past this many (days of refreshes without a scrape) prom-client is loaded
 * anyway, so the buffer stays small.
 */
export const MAX_BUFFERED_EVENTS = 256;

type Recorded = LeaseEvent | { readonly event: 'token.rotated' };
/** The events a metric changes with; the rest (loop.*) are not kept. */
const RECORDED: ReadonlySet<string> = new Set([
  'token.rotated',
  'lease.acquired',
  'lease.renewed',
  'lease.denied',
  'lease.failed',
  'lease.expired',
  'lease.revoked',
  'call.finished',
]);

export function createMetrics(options: { now: () => number; isReady: () => boolean }): SidecarMetrics {
  let buffered: Recorded[] | undefined = [];
  let loading: Promise<Live> | undefined;
  let live: Live | undefined;
  // The time of the last success is read by collect(), so it is kept here, not replayed.
  let lastSuccessMs: number | undefined;

  const load = () =>
    (loading ??= import('prom-client').then((prom) => {
      const l = createLive(prom, options, () => lastSuccessMs);
      for (const e of buffered ?? []) l.record(e);
      buffered = undefined;
      live = l;
      return l;
    }));
  const record = (e: Recorded) => {
    if (!RECORDED.has(e.event)) return;
    if (e.event === 'lease.acquired' || e.event === 'lease.renewed') lastSuccessMs = options.now();
    if (live) return live.record(e);
    buffered!.push(e);
    if (buffered!.length >= MAX_BUFFERED_EVENTS) void load();
  };

  return {
    async render() {
      const l = await load();
      return { contentType: l.registry.contentType, body: await l.registry.metrics() };
    },
    observeTokenRotation: () => record({ event: 'token.rotated' }),
    observe: record,
  };
}

interface Live {
  readonly registry: import('prom-client').Registry;
  record(e: Recorded): void;
}

function createLive(
  prom: typeof import('prom-client'),
  options: { now: () => number; isReady: () => boolean },
  lastSuccessMs: () => number | undefined,
): Live {
  const { Counter, Gauge, Histogram, Registry } = prom;
  const registry = new Registry();
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
      const last = lastSuccessMs();
      this.set(last === undefined ? -1 : (options.now() - last) / 1000);
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
    record(event) {
      switch (event.event) {
        case 'token.rotated':
          rotations.inc();
          break;
        case 'lease.acquired':
        case 'lease.renewed':
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
