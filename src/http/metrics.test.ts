import { describe, expect, it } from 'vitest';
import type { LeaseEvent } from '../lease-events.ts';
import { createMetrics, MAX_BUFFERED_EVENTS } from './metrics.ts';

const audit = {
  issuer: 'i',
  subject: 's',
  tenant: 't',
  bucket: 'b',
  prefix: 'p/',
  backend: 'aws',
  attempt: 1,
};
const renewed = (expiresAtMs: number): LeaseEvent => ({
  ...audit,
  event: 'lease.renewed',
  actions: ['read'],
  decision_id: 'd',
  ttl_seconds: 3600,
  requested_ttl_seconds: 3600,
  stepped_down: false,
  capped_by_token_exp: false,
  expiration: new Date(expiresAtMs).toISOString(),
  expires_at_ms: expiresAtMs,
  access_key_id: 'AKIA',
  sts_request_id: undefined,
  session_name: 'n',
  next_refresh: undefined,
});
const call: LeaseEvent = { event: 'call.finished', target: 'sts', outcome: 'ok', seconds: 0.03 };
const line = (body: string, name: string) => body.split('\n').find((l) => l.startsWith(name));

describe('metrics (prom-client loaded at the first scrape)', () => {
  it('events before the first scrape are all in it, in order, and later ones too', async () => {
    let now = 1_000_000;
    const m = createMetrics({ now: () => now, isReady: () => true });
    m.observe(renewed(2_000_000));
    m.observe(call);
    m.observe({ event: 'loop.sleep', at_ms: now, until_ms: now + 1 });
    m.observe({ event: 'lease.expired', tenant: 't', expiration: 'x', access_key_id: undefined });
    m.observe(renewed(3_000_000));
    m.observeTokenRotation();
    now += 5000;
    const first = await m.render();
    expect(first.contentType).toMatch(/^text\/plain/);
    expect(line(first.body, 'sts_sidecar_refreshes_total{outcome="renewed",reason="ok"}')).toMatch(/ 2$/);
    expect(line(first.body, 'sts_sidecar_refreshes_total{outcome="expired"')).toMatch(/ 1$/);
    expect(line(first.body, 'sts_sidecar_credentials_expiry_timestamp_seconds')).toMatch(/ 3000$/);
    expect(line(first.body, 'sts_sidecar_request_duration_seconds_count{target="sts",outcome="ok"}')).toMatch(
      / 1$/,
    );
    expect(line(first.body, 'sts_sidecar_token_rotations_total')).toMatch(/ 1$/);
    expect(line(first.body, 'sts_sidecar_seconds_since_last_success')).toMatch(/ 5$/);
    expect(line(first.body, 'sts_sidecar_ready')).toMatch(/ 1$/);
    m.observe(call);
    const second = await m.render();
    expect(
      line(second.body, 'sts_sidecar_request_duration_seconds_count{target="sts",outcome="ok"}'),
    ).toMatch(/ 2$/);
  });

  it('never keeps more than MAX_BUFFERED_EVENTS: past that it loads prom-client and counts every event', async () => {
    const m = createMetrics({ now: () => 0, isReady: () => false });
    for (let i = 0; i < MAX_BUFFERED_EVENTS * 3; i++) m.observe(call);
    const r = await m.render();
    expect(line(r.body, 'sts_sidecar_request_duration_seconds_count{target="sts",outcome="ok"}')).toMatch(
      new RegExp(` ${MAX_BUFFERED_EVENTS * 3}$`),
    );
  });
});
