import { describe, expect, it } from 'vitest';
import { forLease } from '../lease-events.ts';
import { createMetrics } from './metrics.ts';

describe('metrics of named leases', () => {
  it('every lease metric carries a lease label with the configured names', async () => {
    const metrics = createMetrics({
      now: () => 10_000,
      isReady: (lease) => lease === 'artifacts',
      leases: ['artifacts', 'datasets'],
    });
    const observe = (e: Parameters<typeof metrics.observe>[0]) => metrics.observe(e);
    forLease(
      'datasets',
      observe,
    )({ event: 'lease.revoked', tenant: 't', reason: 'denied', access_key_id: undefined });
    forLease('artifacts', observe)({ event: 'call.finished', target: 'sts', outcome: 'ok', seconds: 0.1 });
    const text = await metrics.registry.metrics();
    expect(text).toContain('sts_sidecar_ready{lease="artifacts"} 1');
    expect(text).toContain('sts_sidecar_ready{lease="datasets"} 0');
    expect(text).toContain(
      'sts_sidecar_refreshes_total{lease="datasets",outcome="revoked",reason="denied"} 1',
    );
    expect(text).toContain(
      'sts_sidecar_request_duration_seconds_count{lease="artifacts",target="sts",outcome="ok"} 1',
    );
    expect(text).toContain('sts_sidecar_seconds_since_last_success{lease="datasets"} -1');
    expect(text).toContain('sts_sidecar_credentials_expiry_timestamp_seconds{lease="datasets"} 0');
  });

  it('the environment-only lease has no lease label', async () => {
    const metrics = createMetrics({ now: () => 0, isReady: () => true });
    metrics.observe({ event: 'lease.revoked', tenant: 't', reason: 'denied', access_key_id: undefined });
    const text = await metrics.registry.metrics();
    expect(text).toContain('sts_sidecar_ready 1');
    expect(text).toContain('sts_sidecar_refreshes_total{outcome="revoked",reason="denied"} 1');
    expect(text).not.toContain('lease=');
  });
});
