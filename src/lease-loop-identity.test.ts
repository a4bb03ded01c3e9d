import { describe, expect, it } from 'vitest';
import { IdpError, TokenError } from './errors.ts';
import type { LeaseEvent } from './lease-events.ts';
import { LeaseLoop } from './lease-loop.ts';
import type { AssumeRequest, IdentityExchange, Token } from './ports.ts';

const SA_RAW = 'sa-token-raw';
const IAM_RAW = 'iam-profile-token-raw';

const saToken = (now: number): Token => ({
  raw: SA_RAW,
  issuer: 'https://kubernetes.default.svc',
  subject: 'system:serviceaccount:team-a:app',
  audience: ['https://keycloak/realms/sts'],
  tenant: undefined,
  issuedAtMs: now,
  expiresAtMs: now + 3600_000,
});

const iamToken = (now: number, tenant: string | undefined): Token => ({
  raw: IAM_RAW,
  issuer: 'https://keycloak/realms/sts',
  subject: 'svc-user-1',
  audience: ['sts.sidecar.test'],
  tenant,
  issuedAtMs: now,
  expiresAtMs: now + 300_000,
  principalType: 'workload',
  assurance: 'k8s-projected-sa',
});

/** The real loop over recording ports (time frozen), with an existing set on disk. */
function buildLoop(
  exchange: IdentityExchange['exchange'],
  readToken: () => Promise<Token> = async () => saToken(1_000_000),
) {
  const now = 1_000_000;
  const events: LeaseEvent[] = [];
  const calls = {
    exchange: [] as Token[],
    policyBearer: [] as string[],
    sts: [] as AssumeRequest[],
    removes: 0,
  };
  const loop = new LeaseLoop(
    {
      tenant: 'team-a',
      bucket: 'b1',
      prefix: 'p/',
      actions: ['read'],
      ttlSeconds: 3600,
      roleArn: 'arn:aws:iam::1:role/r',
      sessionName: undefined,
      backend: 'ceph-rgw',
      durationLimits: { minSeconds: 900, maxSeconds: 3600 },
      schedule: {
        refreshFraction: 0.5,
        refreshJitter: 0.1,
        readyMarginMs: 360_000,
        backoffInitialMs: 1000,
        backoffMaxMs: 60_000,
      },
      attemptDeadlineMs: 30_000,
    },
    {
      tokens: { read: readToken },
      identity: {
        exchange: (t, signal) => {
          calls.exchange.push(t);
          return exchange(t, signal);
        },
      },
      policy: {
        decide: async (_r, bearer) => {
          calls.policyBearer.push(bearer);
          return { decisionId: 'd-1', ttlSeconds: undefined, actions: undefined, obligations: undefined };
        },
      },
      issuer: {
        assume: async (r) => {
          calls.sts.push(r);
          return {
            credentials: {
              accessKeyId: 'AK1',
              secretAccessKey: 's',
              sessionToken: 't',
              expiresAtMs: now + 3600_000,
            },
            requestId: 'req',
            assumedRoleArn: undefined,
          };
        },
      },
      sink: {
        prepare: async () => ({ expiresAtMs: now + 1800_000 }),
        write: async () => undefined,
        remove: async () => {
          calls.removes++;
        },
      },
      clock: {
        now: () => now,
        sleep: (_ms, signal) => new Promise((resolve) => signal.addEventListener('abort', () => resolve())),
      },
      random: () => 0.5,
      report: (e) => events.push(e),
    },
  );
  return { loop, events, calls };
}

/** One attempt of the real loop (it sleeps until stopped). */
async function oneAttempt(exchange: IdentityExchange['exchange']) {
  const { loop, events, calls } = buildLoop(exchange);
  const stop = new AbortController();
  const done = loop.run(stop.signal);
  for (let i = 0; i < 50 && !events.some((e) => e.event === 'loop.sleep'); i++) {
    await new Promise((r) => setImmediate(r));
  }
  stop.abort();
  await done;
  return { events, calls, lease: events.filter((e) => e.event.startsWith('lease.')) };
}

describe('LeaseLoop with the identity exchange on', () => {
  it('only the exchanged token reaches flex-auth and the STS; the audit names both identities', async () => {
    const { calls, lease, events } = await oneAttempt(async () => iamToken(1_000_000, 'team-a'));
    expect(calls.exchange.map((t) => t.raw)).toEqual([SA_RAW]);
    expect(calls.policyBearer).toEqual([IAM_RAW]);
    expect(calls.sts.map((r) => r.token)).toEqual([IAM_RAW]);
    expect(lease[0]).toMatchObject({
      event: 'lease.acquired',
      issuer: 'https://keycloak/realms/sts',
      subject: 'svc-user-1',
      principal_type: 'workload',
      assurance: 'k8s-projected-sa',
      workload_subject: 'system:serviceaccount:team-a:app',
    });
    expect(events).toContainEqual(
      expect.objectContaining({ event: 'call.finished', target: 'idp', outcome: 'ok' }),
    );
    expect(JSON.stringify(events)).not.toContain(SA_RAW);
  });

  it('no tenant claim in the exchanged token: fail closed (deny, set removed, no flex-auth or STS call)', async () => {
    const { calls, lease } = await oneAttempt(async () => iamToken(1_000_000, undefined));
    expect(calls.policyBearer).toEqual([]);
    expect(calls.sts).toEqual([]);
    expect(calls.removes).toBe(1);
    expect(lease.map((e) => e.event)).toEqual(['lease.revoked', 'lease.denied']);
    expect(lease[1]).toMatchObject({
      code: 'ERR_TOKEN_TENANT_MISSING',
      workload_subject: 'system:serviceaccount:team-a:app',
    });
  });

  it('another tenant in the exchanged token: fail closed with ERR_TOKEN_TENANT_MISMATCH', async () => {
    const { calls, lease } = await oneAttempt(async () => iamToken(1_000_000, 'team-b'));
    expect(calls.policyBearer).toEqual([]);
    expect(calls.sts).toEqual([]);
    expect(lease.map((e) => e.event)).toEqual(['lease.revoked', 'lease.denied']);
    expect(lease[1]).toMatchObject({ code: 'ERR_TOKEN_TENANT_MISMATCH' });
  });

  it('the IdP refusing the workload is a deny carrying the OAuth code', async () => {
    const { calls, lease, events } = await oneAttempt(async () => {
      throw new IdpError('ERR_IDP_REFUSED', 'identity provider refused this workload (invalid_client)', {
        oauthError: 'invalid_client',
        httpStatus: 401,
      });
    });
    expect(calls.policyBearer).toEqual([]);
    expect(calls.removes).toBe(1);
    expect(lease[1]).toMatchObject({
      event: 'lease.denied',
      code: 'ERR_IDP_REFUSED',
      reasons: ['ERR_IDP_REFUSED', 'invalid_client'],
      workload_subject: 'system:serviceaccount:team-a:app',
      subject: undefined,
    });
    expect(events).toContainEqual(
      expect.objectContaining({ event: 'call.finished', target: 'idp', outcome: 'ERR_IDP_REFUSED' }),
    );
  });

  it('the IdP unavailable keeps the set and retries with backoff', async () => {
    const { calls, lease } = await oneAttempt(async () => {
      throw new IdpError('ERR_IDP_UNAVAILABLE', 'identity provider unavailable (network: ECONNREFUSED)');
    });
    expect(calls.removes).toBe(0);
    expect(lease).toHaveLength(1);
    expect(lease[0]).toMatchObject({ event: 'lease.failed', code: 'ERR_IDP_UNAVAILABLE', retryable: true });
    expect((lease[0] as { set_kept_until?: string }).set_kept_until).toBeDefined();
  });

  it('a failed token read is audited without the previous attempt identities', async () => {
    let reads = 0;
    const { loop, events } = buildLoop(
      async () => iamToken(1_000_000, 'team-a'),
      async () => {
        if (++reads > 1) throw new TokenError('ERR_TOKEN_MISSING', 'token file /t does not exist');
        return saToken(1_000_000);
      },
    );
    await loop.attemptOnce(undefined, { write: false });
    await expect(loop.attemptOnce(undefined, { write: false })).rejects.toMatchObject({
      code: 'ERR_TOKEN_MISSING',
    });
    const lease = events.filter((e) => e.event.startsWith('lease.'));
    expect(lease.map((e) => e.event)).toEqual(['lease.acquired', 'lease.failed']);
    expect(lease[0]).toMatchObject({
      subject: 'svc-user-1',
      workload_subject: 'system:serviceaccount:team-a:app',
    });
    expect(lease[1]).toMatchObject({ attempt: 2, code: 'ERR_TOKEN_MISSING' });
    expect(lease[1]).toMatchObject({
      subject: undefined,
      workload_subject: undefined,
      principal_type: undefined,
    });
  });

  it('attemptOnce reports exactly one outcome: lease.denied for a deny (after revoking the set it found), lease.failed otherwise, with no next attempt', async () => {
    const denied = buildLoop(async () => {
      throw new IdpError('ERR_IDP_REFUSED', 'refused', { oauthError: 'invalid_client' });
    });
    await expect(denied.loop.attemptOnce(undefined, { write: true })).rejects.toMatchObject({
      code: 'ERR_IDP_REFUSED',
    });
    expect(denied.calls.removes).toBe(1);
    const d = denied.events.filter((e) => e.event.startsWith('lease.'));
    expect(d.map((e) => e.event)).toEqual(['lease.revoked', 'lease.denied']);
    expect(d[0]).toMatchObject({ reason: 'denied' });
    expect(d[1]).toMatchObject({
      event: 'lease.denied',
      reasons: ['ERR_IDP_REFUSED', 'invalid_client'],
      next_attempt: undefined,
      workload_subject: 'system:serviceaccount:team-a:app',
    });
    const failed = buildLoop(async () => {
      throw new IdpError('ERR_IDP_UNAVAILABLE', 'down');
    });
    await expect(failed.loop.attemptOnce(undefined, { write: false })).rejects.toMatchObject({
      code: 'ERR_IDP_UNAVAILABLE',
    });
    const f = failed.events.filter((e) => e.event.startsWith('lease.'));
    expect(f).toHaveLength(1);
    expect(f[0]).toMatchObject({
      event: 'lease.failed',
      code: 'ERR_IDP_UNAVAILABLE',
      next_attempt: undefined,
    });
  });
});
