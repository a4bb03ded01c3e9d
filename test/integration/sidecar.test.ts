/**
 * The built sidecar (dist/sts-sidecar.mjs) as a separate process against the local stack: the real
 * OIDC issuer, the decision server and the real Ceph RGW when usable (else the STS stand-in); the
 * short-lease scenarios use the STS stand-in, which can hand out 8-second leases.
 */
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { httpGet, readSet } from '../support/credentials.ts';
import type { SidecarProcess } from '../support/sidecar-process.ts';
import { useStackTeardown } from '../support/stack-teardown.ts';

const { stack, sidecar } = useStackTeardown();

async function healthUrl(p: SidecarProcess): Promise<string> {
  const started = await p.waitForEvent('sidecar.started');
  return `http://${String(started.listen)}`;
}

const shortLeases = {
  STS_SIDECAR_TTL_SECONDS: '900',
  STS_SIDECAR_READY_MARGIN_SECONDS: '2',
  STS_SIDECAR_BACKOFF_INITIAL_SECONDS: '0.2',
  STS_SIDECAR_BACKOFF_MAX_SECONDS: '1',
  STS_SIDECAR_REQUEST_TIMEOUT_SECONDS: '2',
};

describe('sidecar process on the local stack', () => {
  it('writes the set with the right layout and modes, serves health, follows a token rotation, exits 0 on SIGTERM', async () => {
    const s = await stack({ sts: 'auto' });
    const p = sidecar({ ...s.env, STS_SIDECAR_FILE_MODE: '0440' }, `main-${s.stsKind}`);
    const base = await healthUrl(p);
    const acquired = await p.waitForEvent('lease.acquired', 20_000);
    expect(acquired).toMatchObject({
      tenant: 'team-a',
      bucket: 'artifacts',
      prefix: 'team-a/',
      actions: ['list', 'read', 'write'],
      backend: s.stsKind === 'ceph-rgw' ? 'ceph-rgw' : 'generic',
      subject: s.subject,
      issuer: s.issuer.url,
      ttl_seconds: 3600,
    });
    expect(acquired.decision_id).toMatch(/^dec-/);
    expect(acquired.sts_request_id).toBeTruthy();

    const names = (await readdir(s.outputDir)).sort();
    expect(names.filter((n) => !n.startsWith('..2'))).toEqual([
      '..data',
      'access-key',
      'credentials.json',
      'expiration',
      'secret-key',
      'session-token',
    ]);
    for (const f of ['access-key', 'secret-key', 'session-token', 'expiration', 'credentials.json']) {
      expect((await stat(path.join(s.outputDir, f))).mode & 0o777, f).toBe(0o440);
    }
    const set = await readSet(s.outputDir);
    expect(set.accessKey).toBe(acquired.access_key_id);
    expect(set.json).toEqual({
      Version: 1,
      AccessKeyId: set.accessKey,
      SecretAccessKey: set.secretKey,
      SessionToken: set.sessionToken,
      Expiration: set.expiration,
    });
    expect(set.expiration).toBe(acquired.expiration);
    expect(Date.parse(set.expiration) - Date.now()).toBeGreaterThan(3000_000);

    expect((await httpGet(`${base}/readyz`)).status).toBe(200);
    expect((await httpGet(`${base}/healthz`)).status).toBe(200);
    const metrics = (await httpGet(`${base}/metrics`)).body;
    expect(metrics).toMatch(/sts_sidecar_refreshes_total\{outcome="acquired",reason="ok"\} 1/);
    expect(metrics).toMatch(/sts_sidecar_credentials_expiry_timestamp_seconds \d{10}/);
    expect(metrics).toMatch(/sts_sidecar_request_duration_seconds_count\{target="sts",outcome="ok"\} 1/);

    // kubelet rotates the token: the rotation is logged, and the next exchange (SIGHUP) uses the new token.
    const before = s.issuer.requestCount;
    await s.rotateToken({ rotation: 2 });
    const rotated = await p.waitForEvent('token.rotated', 10_000);
    expect(rotated.subject).toBe(s.subject);
    p.child.kill('SIGHUP');
    const renewed = await p.waitForEvent('lease.renewed', 20_000);
    expect(renewed.access_key_id).not.toBe(acquired.access_key_id);
    // The decision server (and RGW) verified the new token against the issuer's JWKS.
    expect(s.issuer.requestCount).toBeGreaterThan(before);

    p.kill('SIGTERM');
    const t0 = Date.now();
    const { code } = await p.exited;
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(p.lines.at(-1)).toMatchObject({ event: 'sidecar.stopped' });
    // Without STS_SIDECAR_WIPE_ON_EXIT the set stays for the app's last requests.
    expect(existsSync(path.join(s.outputDir, 'access-key'))).toBe(true);
  });

  it('renews by replacing the whole set before expiry', async () => {
    const s = await stack({ sts: 'stand-in', leaseSeconds: 8 });
    const p = sidecar({ ...s.env, ...shortLeases }, 'renewal');
    await p.waitForEvent('lease.acquired');
    const first = await readSet(s.outputDir);
    const renewed = await p.waitForEvent('lease.renewed', 15_000);
    const second = await readSet(s.outputDir);
    expect(second.generation).not.toBe(first.generation);
    expect(second.accessKey).toBe(renewed.access_key_id);
    for (const k of ['accessKey', 'secretKey', 'sessionToken'] as const) expect(second[k]).not.toBe(first[k]);
    expect(Date.parse(second.expiration)).toBeGreaterThan(Date.parse(first.expiration));
    // Renewed well before the first set expired.
    expect(Date.parse(String(renewed.time))).toBeLessThan(Date.parse(first.expiration) - 2000);
    expect((await readdir(s.outputDir)).filter((n) => n.startsWith('..2'))).toEqual([second.generation]);
  });

  it('removes the set at once on a deny (SIGHUP after a policy change) and brings it back on allow', async () => {
    const s = await stack({ sts: 'stand-in' });
    const p = sidecar({ ...s.env, ...shortLeases }, 'deny');
    const base = await healthUrl(p);
    await p.waitForEvent('lease.acquired');
    await s.writePolicy({ rules: [] });
    const from = p.lines.length;
    p.child.kill('SIGHUP');
    const denied = await p.waitForEvent('lease.denied', 10_000, from);
    expect(denied).toMatchObject({ code: 'ERR_POLICY_DENIED', reasons: ['no_matching_rule'] });
    expect(denied.decision_id).toMatch(/^dec-/);
    await p.waitForEvent('lease.revoked', 5000, from);
    expect(existsSync(path.join(s.outputDir, 'access-key'))).toBe(false);
    expect(existsSync(path.join(s.outputDir, '..data'))).toBe(false);
    expect((await httpGet(`${base}/readyz`)).status).toBe(503);
    await s.writePolicy({
      rules: [
        { tenant: 'team-a', bucket: 'artifacts', prefix: 'team-a/', actions: ['read', 'write', 'list'] },
      ],
    });
    await p.waitForEvent('lease.acquired', 10_000, from);
    expect(existsSync(path.join(s.outputDir, 'access-key'))).toBe(true);
    expect((await httpGet(`${base}/readyz`)).status).toBe(200);
  });

  it('keeps the set through an STS outage until it expires, then removes it; recovers when the STS returns', async () => {
    const s = await stack({ sts: 'stand-in', leaseSeconds: 6 });
    const p = sidecar({ ...s.env, ...shortLeases }, 'outage');
    const base = await healthUrl(p);
    await p.waitForEvent('lease.acquired');
    const set = await readSet(s.outputDir);
    s.standIn!.setFault({ kind: 'status', status: 503 });
    const failed = await p.waitForEvent('lease.failed', 10_000);
    expect(failed).toMatchObject({
      code: 'ERR_STS_UNREACHABLE',
      http_status: 503,
      set_kept_until: set.expiration,
    });
    expect((await readSet(s.outputDir)).accessKey).toBe(set.accessKey);
    const expired = await p.waitForEvent('lease.expired', 10_000);
    expect(expired.access_key_id).toBe(set.accessKey);
    expect(existsSync(path.join(s.outputDir, 'access-key'))).toBe(false);
    expect((await httpGet(`${base}/readyz`)).status).toBe(503);
    // Bounded retries: with a 1 s backoff cap the outage of about 6 s cannot exceed a few dozen calls.
    const faultCalls = s.standIn!.calls.filter((c) => c.outcome === 'fault').length;
    expect(faultCalls).toBeGreaterThan(2);
    expect(faultCalls).toBeLessThan(60);
    s.standIn!.setFault(undefined);
    const from = p.lines.length;
    await p.waitForEvent('lease.acquired', 5000, from);
    expect((await httpGet(`${base}/readyz`)).status).toBe(200);
  });

  it('with STS_SIDECAR_WIPE_ON_EXIT removes the set on SIGTERM', async () => {
    const s = await stack({ sts: 'stand-in' });
    const p = sidecar({ ...s.env, STS_SIDECAR_WIPE_ON_EXIT: 'true' }, 'wipe');
    await p.waitForEvent('lease.acquired');
    p.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
    expect(p.lines.map((l) => l.event)).toContain('lease.revoked');
    expect(await readdir(s.outputDir)).toEqual([]);
  });
});
