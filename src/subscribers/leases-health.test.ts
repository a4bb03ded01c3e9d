import { describe, expect, it } from 'vitest';
import { forLease, type LeaseEvent } from '../lease-events.ts';
import { createLeasesHealth } from './health.ts';

const T0 = 1_000_000;
const MARGIN = 60_000;

function acquired(expiresAtMs: number): LeaseEvent {
  return {
    event: 'lease.acquired',
    issuer: 'i',
    subject: 's',
    tenant: 't',
    bucket: 'b',
    prefix: '',
    backend: 'generic',
    attempt: 1,
    actions: ['read'],
    decision_id: 'd',
    ttl_seconds: 3600,
    requested_ttl_seconds: 3600,
    stepped_down: false,
    capped_by_token_exp: false,
    expiration: new Date(expiresAtMs).toISOString(),
    expires_at_ms: expiresAtMs,
    access_key_id: 'AKID',
    sts_request_id: undefined,
    session_name: 's',
    next_refresh: undefined,
  };
}

describe('health of named leases', () => {
  it('is ready only when every lease is, and /readyz lists each lease', () => {
    const health = createLeasesHealth(() => T0, ['artifacts', 'datasets']);
    forLease('artifacts', health.subscriber)(acquired(T0 + 3600_000));
    expect(health.isReady(T0, MARGIN)).toBe(false);
    expect(health.readyBody(T0, MARGIN)).toMatchObject({
      ready: false,
      leases: {
        artifacts: { ready: true, seconds_left: 3600 },
        datasets: { ready: false, seconds_left: null },
      },
    });
    forLease('datasets', health.subscriber)(acquired(T0 + 1800_000));
    expect(health.isReady(T0, MARGIN)).toBe(true);
    expect(health.isLeaseReady('datasets', T0, MARGIN)).toBe(true);
    forLease(
      'datasets',
      health.subscriber,
    )({ event: 'lease.revoked', tenant: 't', reason: 'denied', access_key_id: 'AKID' });
    expect(health.isReady(T0, MARGIN)).toBe(false);
    expect(health.isLeaseReady('artifacts', T0, MARGIN)).toBe(true);
  });

  it('the environment-only lease answers with the single view as before', () => {
    const health = createLeasesHealth(() => T0, [undefined]);
    health.subscriber(acquired(T0 + 3600_000));
    expect(health.readyBody(T0, MARGIN)).toEqual({
      ready: true,
      seconds_left: 3600,
      margin_seconds: 60,
      consecutive_failures: 0,
      last_error: null,
      seconds_since_success: 0,
    });
  });
});
