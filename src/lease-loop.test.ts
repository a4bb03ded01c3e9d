import { describe, expect, it } from 'vitest';
import type { CredentialSet } from './domain/credentials.ts';
import type { AllowAnswer } from './domain/grant.ts';
import { IdpError, PolicyDeniedError, PolicyError, StsError, type ErrorCode } from './errors.ts';
import type { LeaseEvent } from './lease-events.ts';
import { LeaseLoop, type LeaseSettings } from './lease-loop.ts';
import { DENY_CODES } from './lease-outcome.ts';
import type {
  AssumeRequest,
  AssumeResult,
  Clock,
  CredentialSink,
  DecisionRequest,
  IdentityExchange,
  PolicyClient,
  Token,
  TokenSource,
} from './ports.ts';

const MIN = 60_000;

/** A test clock: time moves only when the test says so. */
class ManualClock implements Clock {
  t = 0;
  timers: { at: number; resolve: () => void }[] = [];
  now = () => this.t;
  sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const timer = { at: this.t + ms, resolve };
      this.timers.push(timer);
      signal.addEventListener('abort', () => {
        this.timers = this.timers.filter((x) => x !== timer);
        resolve();
      });
    });
  }
  async advanceTo(target: number): Promise<void> {
    await settle();
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > target) break;
      this.timers.shift();
      this.t = Math.max(this.t, next.at);
      next.resolve();
      await settle();
    }
    this.t = Math.max(this.t, target);
    await settle();
  }
}

/** An STS answer with dummy secrets, for the fakes. */
function issued(accessKeyId: string, expiresAtMs: number): AssumeResult {
  return {
    credentials: { accessKeyId, secretAccessKey: 's', sessionToken: 't', expiresAtMs },
    requestId: undefined,
    assumedRoleArn: undefined,
  };
}

async function settle() {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

function harness(overrides: Partial<LeaseSettings> = {}) {
  const clock = new ManualClock();
  const events: LeaseEvent[] = [];
  const written: CredentialSet[] = [];
  let onDisk: CredentialSet | undefined;
  let policyAnswer: () => Promise<AllowAnswer> = async () => ({
    decisionId: 'd-1',
    ttlSeconds: undefined,
    actions: undefined,
    obligations: undefined,
  });
  let stsAnswer: (r: AssumeRequest) => Promise<AssumeResult> = async (r) => ({
    credentials: {
      accessKeyId: `AK${written.length}`,
      secretAccessKey: 's',
      sessionToken: 't',
      expiresAtMs: clock.now() + r.durationSeconds * 1000,
    },
    requestId: 'req',
    assumedRoleArn: undefined,
  });
  let tokenTenant: string | undefined;
  let tokenLifetimeMs = 3600_000;
  let removeFails = false;
  let writeFailsCommitted = false;
  const calls = {
    token: 0,
    policy: 0,
    sts: [] as AssumeRequest[],
    policyRequests: [] as DecisionRequest[],
    removes: 0,
  };
  const tokens: TokenSource = {
    read: async () => {
      calls.token++;
      return {
        raw: 'raw-token',
        issuer: 'https://issuer',
        subject: 'system:serviceaccount:ns:sa',
        audience: ['sts'],
        tenant: tokenTenant,
        issuedAtMs: clock.now(),
        expiresAtMs: clock.now() + tokenLifetimeMs,
      } satisfies Token;
    },
  };
  const policy: PolicyClient = {
    decide: (request) => {
      calls.policy++;
      calls.policyRequests.push(request);
      return policyAnswer();
    },
  };
  const sinkSignals: { write?: AbortSignal | undefined; remove?: AbortSignal | undefined } = {};
  const sink: CredentialSink = {
    // What a real sink's prepare finds: the set left on disk, if any.
    prepare: async () => (onDisk ? { expiresAtMs: onDisk.expiresAtMs, set: onDisk } : undefined),
    write: async (set, signal) => {
      sinkSignals.write = signal;
      written.push(set);
      onDisk = set;
      if (writeFailsCommitted)
        throw Object.assign(new Error('fsync failed after the swap'), { committed: true });
    },
    remove: async (signal) => {
      sinkSignals.remove = signal;
      calls.removes++;
      if (removeFails) throw Object.assign(new Error('EROFS'), { code: 'ERR_OUTPUT_WRITE' });
      onDisk = undefined;
    },
  };
  const settings: LeaseSettings = {
    tenant: 'team-a',
    bucket: 'b1',
    prefix: 'p/',
    actions: ['read'],
    ttlSeconds: 3600,
    roleArn: 'arn:aws:iam::1:role/r',
    sessionName: undefined,
    backend: 'generic',
    durationLimits: { minSeconds: 900, maxSeconds: 3600 },
    schedule: {
      refreshFraction: 0.5,
      refreshJitter: 0.1,
      readyMarginMs: 6 * MIN,
      backoffInitialMs: 1000,
      backoffMaxMs: 60_000,
    },
    attemptDeadlineMs: 30_000,
    ...overrides,
  };
  let identity: IdentityExchange | undefined;
  const loop = () =>
    new LeaseLoop(settings, {
      tokens,
      policy,
      issuer: {
        assume: (r) => {
          calls.sts.push(r);
          return stsAnswer(r);
        },
      },
      sink,
      clock,
      random: () => 0.5,
      report: (e) => events.push(e),
      identity,
    });
  const theLoop = loop();
  const controller = new AbortController();
  return {
    clock,
    loop: theLoop,
    /** A second process over the same sink (a restart, or the next `once`), with the IdP step when set. */
    newLoop: (idp?: IdentityExchange) => {
      identity = idp;
      return loop();
    },
    events,
    written,
    calls,
    onDisk: () => onDisk,
    seed: (set: CredentialSet) => (onDisk = set),
    names: () => events.map((e) => e.event).filter((n) => n.startsWith('lease.')),
    leaseEvents: () => events.filter((e) => e.event.startsWith('lease.')),
    setPolicy: (f: () => Promise<AllowAnswer>) => (policyAnswer = f),
    setSts: (f: (r: AssumeRequest) => Promise<AssumeResult>) => (stsAnswer = f),
    setTokenTenant: (t: string | undefined) => (tokenTenant = t),
    setTokenExpiresInMs: (ms: number) => (tokenLifetimeMs = ms),
    settings,
    setRemoveFails: (v: boolean) => (removeFails = v),
    setWriteFailsCommitted: (v: boolean) => (writeFailsCommitted = v),
    sinkSignals,
    runSignal: controller.signal,
    start: () => theLoop.run(controller.signal),
    stop: () => controller.abort(),
  };
}

describe('LeaseLoop', () => {
  it('acquires at once, then renews the whole set at the jittered refresh time', async () => {
    const h = harness();
    const done = h.start();
    await h.clock.advanceTo(0);
    expect(h.names()).toEqual(['lease.acquired']);
    expect(h.written).toHaveLength(1);
    // First lease: fraction 0.5 of 60 min minus the widened first-lease jitter 0.4 * 60 min * draw 0.5 = 18 min.
    await h.clock.advanceTo(18 * MIN - 1);
    expect(h.written).toHaveLength(1);
    await h.clock.advanceTo(18 * MIN);
    expect(h.names()).toEqual(['lease.acquired', 'lease.renewed']);
    // Later leases: the configured jitter, 0.1 * 60 min * 0.5 = 3 min off the half-life: 27 min later.
    await h.clock.advanceTo(18 * MIN + 27 * MIN - 1);
    expect(h.written).toHaveLength(2);
    await h.clock.advanceTo(18 * MIN + 27 * MIN);
    expect(h.written).toHaveLength(3);
    expect(h.onDisk()?.accessKeyId).toBe('AK2');
    h.stop();
    await done;
  });

  it('a lease the STS ends at the token exp (SeaweedFS): refresh from the lifetime received, flagged capped_by_token_exp', async () => {
    const h = harness({ schedule: { ...harness().settings.schedule, readyMarginMs: MIN } });
    // The token expires in 20 min; the STS ends the credentials with it although 60 min were asked.
    h.setTokenExpiresInMs(20 * MIN);
    h.setSts(async () => issued('AKcapped', h.clock.now() + 20 * MIN));
    const done = h.start();
    await h.clock.advanceTo(0);
    const acquired = h.events.find((e) => e.event === 'lease.acquired');
    expect(acquired).toMatchObject({ ttl_seconds: 3600, capped_by_token_exp: true });
    // Not half of the 20 min received (6 min with the first-lease jitter): the same token would get the same
    // expiry back. The refresh waits for the token's replacement at 80% of its life (16 min), which is
    // before the latest moment the margin allows (20 - 1 margin - 1 slack = 18 min).
    expect(acquired).toMatchObject({ next_refresh: new Date(16 * MIN).toISOString() });
    expect(h.loop.awaitingNewToken).toBe(true);
    await h.clock.advanceTo(16 * MIN - 1);
    expect(h.written).toHaveLength(1);
    await h.clock.advanceTo(16 * MIN);
    expect(h.written).toHaveLength(2);
    h.stop();
    await done;
  });

  it('a lease shorter than asked but not ending with the token is not flagged capped_by_token_exp', async () => {
    const h = harness();
    h.setSts(async () => issued('AKshort', h.clock.now() + 20 * MIN));
    const done = h.start();
    await h.clock.advanceTo(0);
    expect(h.events.find((e) => e.event === 'lease.acquired')).toMatchObject({ capped_by_token_exp: false });
    expect(h.loop.awaitingNewToken).toBe(false);
    h.stop();
    await done;
  });

  it('sends exactly what was asked: session policy, derived session name, TTL, role', async () => {
    const h = harness();
    const done = h.start();
    await h.clock.advanceTo(0);
    const req = h.calls.sts[0]!;
    expect(req).toMatchObject({
      roleArn: 'arn:aws:iam::1:role/r',
      sessionName: 'ns-sa',
      durationSeconds: 3600,
      token: 'raw-token',
    });
    expect(JSON.parse(req.policy).Statement[0].Resource).toEqual(['arn:aws:s3:::b1/p/*']);
    const acquired = h.events.find((e) => e.event === 'lease.acquired');
    expect(acquired).toMatchObject({
      decision_id: 'd-1',
      tenant: 'team-a',
      subject: 'system:serviceaccount:ns:sa',
      access_key_id: 'AK0',
      attempt: 1,
    });
    h.stop();
    await done;
  });

  it('keeps the set through an outage, backs off, drops readiness margin-wise and removes it at expiry', async () => {
    const h = harness();
    const done = h.start();
    await h.clock.advanceTo(0);
    h.setSts(async () => {
      throw new StsError('ERR_STS_UNREACHABLE', 'down');
    });
    await h.clock.advanceTo(59 * MIN);
    expect(h.onDisk()).toBeDefined();
    const failures = h.events.filter((e) => e.event === 'lease.failed');
    expect(failures.length).toBeGreaterThan(5);
    // Bounded retry rate: 32 minutes of outage with a 60 s cap is well under 100 attempts.
    expect(failures.length).toBeLessThan(100);
    // An attempt happened at exactly the margin boundary (54 min): the loop never slept past it.
    const attempts = h.events.filter(
      (e): e is Extract<LeaseEvent, { event: 'loop.attempt' }> => e.event === 'loop.attempt',
    );
    expect(attempts.some((a) => a.at_ms === 54 * MIN)).toBe(true);
    await h.clock.advanceTo(60 * MIN);
    expect(h.onDisk()).toBeUndefined();
    expect(h.names()).toContain('lease.expired');
    // Service returns: the next attempt within the backoff cap brings a fresh set.
    h.setSts(async (r) => issued('AKnew', h.clock.now() + r.durationSeconds * 1000));
    await h.clock.advanceTo(61 * MIN);
    expect(h.onDisk()?.accessKeyId).toBe('AKnew');
    expect(h.names().at(-1)).toBe('lease.acquired');
    h.stop();
    await done;
  });

  it('an explicit deny removes the set at once; a later allow brings it back', async () => {
    const h = harness();
    const done = h.start();
    await h.clock.advanceTo(0);
    h.setPolicy(async () => {
      throw new PolicyDeniedError('d-deny', ['no_matching_rule']);
    });
    h.loop.refreshNow();
    await h.clock.advanceTo(1);
    expect(h.onDisk()).toBeUndefined();
    expect(h.names()).toEqual(['lease.acquired', 'lease.revoked', 'lease.denied']);
    expect(h.events.find((e) => e.event === 'lease.denied')).toMatchObject({
      decision_id: 'd-deny',
      reasons: ['no_matching_rule'],
    });
    h.setPolicy(async () => ({
      decisionId: 'd-2',
      ttlSeconds: undefined,
      actions: undefined,
      obligations: undefined,
    }));
    await h.clock.advanceTo(2 * MIN);
    expect(h.onDisk()).toBeDefined();
    expect(h.names().at(-1)).toBe('lease.acquired');
    h.stop();
    await done;
  });

  it('policy unavailable is not a deny: the set stays', async () => {
    const h = harness();
    const done = h.start();
    await h.clock.advanceTo(0);
    h.setPolicy(async () => {
      throw new PolicyError('ERR_POLICY_UNAVAILABLE', 'HTTP 503');
    });
    h.loop.refreshNow();
    await h.clock.advanceTo(1);
    expect(h.onDisk()).toBeDefined();
    expect(h.names()).toEqual(['lease.acquired', 'lease.failed']);
    h.stop();
    await done;
  });

  it('fails closed when the token tenant disagrees: no request is sent and the set goes', async () => {
    const h = harness();
    const done = h.start();
    await h.clock.advanceTo(0);
    h.setTokenTenant('team-b');
    h.loop.refreshNow();
    await h.clock.advanceTo(1);
    expect(h.calls.policy).toBe(1);
    expect(h.calls.sts).toHaveLength(1);
    expect(h.onDisk()).toBeUndefined();
    expect(h.events.filter((e) => e.event.startsWith('lease.')).at(-1)).toMatchObject({
      event: 'lease.denied',
      code: 'ERR_TOKEN_TENANT_MISMATCH',
    });
    h.stop();
    await done;
  });

  it('narrows a grant and steps down once when the STS refuses the duration', async () => {
    const h = harness({ ttlSeconds: 3600 });
    h.setPolicy(async () => ({
      decisionId: 'd',
      ttlSeconds: 1800,
      actions: ['read', 'delete'],
      obligations: undefined,
    }));
    h.setSts(async (r) => {
      if (r.durationSeconds > 900) throw new StsError('ERR_STS_DURATION_OUT_OF_RANGE', 'too long');
      return issued('AK', h.clock.now() + 900_000);
    });
    const done = h.start();
    await h.clock.advanceTo(0);
    expect(h.calls.sts.map((r) => r.durationSeconds)).toEqual([1800, 900]);
    expect(JSON.parse(h.calls.sts[0]!.policy).Statement[0].Action).toEqual(['s3:GetObject']);
    expect(h.events.find((e) => e.event === 'lease.acquired')).toMatchObject({
      ttl_seconds: 900,
      stepped_down: true,
    });
    h.stop();
    await done;
  });

  it('refuses STS credentials that are already expired', async () => {
    const h = harness();
    h.setSts(async () => issued('AK', h.clock.now() - 1));
    const done = h.start();
    await h.clock.advanceTo(0);
    expect(h.written).toHaveLength(0);
    expect(h.events.find((e) => e.event === 'lease.failed')).toMatchObject({
      code: 'ERR_STS_INVALID_RESPONSE',
    });
    h.stop();
    await done;
  });

  it('hands the stop signal to the sink write (a remote sink can be cut short) and the wipe its own bound', async () => {
    const h = harness();
    const done = h.start();
    await h.clock.advanceTo(0);
    expect(h.written).toHaveLength(1);
    expect(h.sinkSignals.write).toBe(h.runSignal);
    h.stop();
    await done;
    const bound = AbortSignal.timeout(60_000);
    await h.loop.wipe(bound);
    expect(h.sinkSignals.remove).toBe(bound);
  });

  it('stops promptly when aborted mid-sleep', async () => {
    const h = harness();
    const done = h.start();
    await h.clock.advanceTo(0);
    h.stop();
    await expect(done).resolves.toBeUndefined();
    expect(h.clock.timers).toHaveLength(0);
  });

  it('a set that cannot be removed on a deny keeps the loop alive, is reported, and is removed later', async () => {
    const h = harness();
    const done = h.start();
    await h.clock.advanceTo(0);
    h.setRemoveFails(true);
    h.setPolicy(async () => {
      throw new PolicyDeniedError('d-x', ['no_matching_rule']);
    });
    h.loop.refreshNow();
    await h.clock.advanceTo(1);
    expect(h.names()).toEqual(['lease.acquired', 'lease.failed', 'lease.denied']);
    expect(h.onDisk()).toBeDefined();
    h.setRemoveFails(false);
    await h.clock.advanceTo(3 * MIN);
    expect(h.onDisk()).toBeUndefined();
    expect(h.names()).toContain('lease.revoked');
    h.stop();
    await expect(done).resolves.toBeUndefined();
  });

  it('a failing removal at expiry is retried with backoff, not in a hot loop', async () => {
    const h = harness();
    const done = h.start();
    await h.clock.advanceTo(0);
    h.setSts(async () => {
      throw new StsError('ERR_STS_UNREACHABLE', 'down');
    });
    h.setRemoveFails(true);
    await h.clock.advanceTo(60 * MIN + 10_000);
    // At most one removal try per initial-backoff second, not thousands.
    expect(h.calls.removes).toBeGreaterThan(1);
    expect(h.calls.removes).toBeLessThan(40);
    h.setRemoveFails(false);
    await h.clock.advanceTo(60 * MIN + 12_000);
    expect(h.onDisk()).toBeUndefined();
    expect(h.names()).toContain('lease.expired');
    h.stop();
    await expect(done).resolves.toBeUndefined();
  });

  it('a write that failed after the set went live still has the set removed at its expiry', async () => {
    const h = harness();
    h.setWriteFailsCommitted(true);
    h.setSts(async () => issued('AKlive', h.clock.now() + 900_000));
    const done = h.start();
    await h.clock.advanceTo(0);
    expect(h.names()).toEqual(['lease.failed']);
    h.setSts(async () => {
      throw new StsError('ERR_STS_UNREACHABLE', 'down');
    });
    await h.clock.advanceTo(15 * MIN);
    expect(h.onDisk()).toBeUndefined();
    expect(h.events.find((e) => e.event === 'lease.expired')).toMatchObject({ access_key_id: 'AKlive' });
    h.stop();
    await done;
  });

  it('a configured TTL above the STS maximum is asked for at the maximum and logged as stepped down', async () => {
    const h = harness({ ttlSeconds: 7200 });
    const done = h.start();
    await h.clock.advanceTo(0);
    expect(h.calls.policyRequests[0]!.ttl_seconds).toBe(3600);
    expect(h.calls.sts[0]!.durationSeconds).toBe(3600);
    expect(h.events.find((e) => e.event === 'lease.acquired')).toMatchObject({
      ttl_seconds: 3600,
      requested_ttl_seconds: 7200,
      stepped_down: true,
    });
    h.stop();
    await done;
  });

  it('a lease shorter than the margin does not turn into a loop of exchanges', async () => {
    const h = harness();
    h.setSts(async () => issued('AK', h.clock.now() + 300_000));
    const done = h.start();
    await h.clock.advanceTo(10 * MIN);
    // 5-minute leases under a 6-minute margin: refreshed every 0.5-2.5 minutes, not hundreds of times.
    expect(h.calls.sts.length).toBeGreaterThan(3);
    expect(h.calls.sts.length).toBeLessThan(30);
    h.stop();
    await done;
  });
});

describe('once fails closed like the daemon', () => {
  const old = (h: ReturnType<typeof harness>) =>
    h.seed({ accessKeyId: 'AKold', secretAccessKey: 's', sessionToken: 't', expiresAtMs: 3600_000 });
  const allow = (a: Partial<AllowAnswer>) => async (): Promise<AllowAnswer> => ({
    decisionId: 'd-2',
    ttlSeconds: undefined,
    actions: undefined,
    obligations: undefined,
    ...a,
  });
  const idpToken = (tenant: string | undefined): Token => ({
    raw: 'iam-token',
    issuer: 'https://idp',
    subject: 'svc',
    audience: ['sts'],
    tenant,
    issuedAtMs: 0,
    expiresAtMs: 3600_000,
  });
  /** Each deny-like code, produced where it really arises; the table must cover every code the loop denies on. */
  const denials: Record<string, (h: ReturnType<typeof harness>) => LeaseLoop> = {
    ERR_POLICY_DENIED: (h) => {
      h.setPolicy(async () => {
        throw new PolicyDeniedError('d-9', ['no_matching_rule']);
      });
      return h.newLoop();
    },
    ERR_NOTHING_GRANTED: (h) => {
      h.setPolicy(allow({ actions: ['write'] }));
      return h.newLoop();
    },
    ERR_TTL_BELOW_STS_MINIMUM: (h) => {
      h.setPolicy(allow({ ttlSeconds: 60 }));
      return h.newLoop();
    },
    ERR_POLICY_OBLIGATION_UNSUPPORTED: (h) => {
      h.setPolicy(allow({ obligations: { geo_fence: 'eu' } }));
      return h.newLoop();
    },
    ERR_TOKEN_TENANT_MISMATCH: (h) => {
      h.setTokenTenant('team-b');
      return h.newLoop();
    },
    ERR_IDP_REFUSED: (h) =>
      h.newLoop({
        exchange: async () => {
          throw new IdpError('ERR_IDP_REFUSED', 'refused', { oauthError: 'invalid_client' });
        },
      }),
    ERR_TOKEN_TENANT_MISSING: (h) => h.newLoop({ exchange: async () => idpToken(undefined) }),
  };

  it('the table covers every deny-like code', () => {
    expect(Object.keys(denials).sort()).toEqual([...DENY_CODES].sort());
  });

  for (const [code, make] of Object.entries(denials)) {
    it(`${code}: once removes the set an earlier run left, logs lease.revoked then lease.denied, and rethrows`, async () => {
      const h = harness();
      old(h);
      await expect(make(h).attemptOnce(undefined, { write: true })).rejects.toMatchObject({
        code: code as ErrorCode,
      });
      expect(h.onDisk()).toBeUndefined();
      expect(h.calls.removes).toBe(1);
      expect(h.names()).toEqual(['lease.revoked', 'lease.denied']);
      expect(h.leaseEvents()[0]).toEqual({
        event: 'lease.revoked',
        tenant: 'team-a',
        reason: 'denied',
        access_key_id: 'AKold',
      });
      expect(h.leaseEvents()[1]).toMatchObject({ event: 'lease.denied', code, next_attempt: undefined });
    });
  }

  it('a failure (exit 3) keeps the set and says until when', async () => {
    const h = harness();
    old(h);
    h.setPolicy(async () => {
      throw new PolicyError('ERR_POLICY_UNAVAILABLE', 'down');
    });
    await expect(h.newLoop().attemptOnce(undefined, { write: true })).rejects.toMatchObject({
      code: 'ERR_POLICY_UNAVAILABLE',
    });
    expect(h.onDisk()?.accessKeyId).toBe('AKold');
    expect(h.calls.removes).toBe(0);
    expect(h.names()).toEqual(['lease.failed']);
    expect(h.leaseEvents()[0]).toMatchObject({
      code: 'ERR_POLICY_UNAVAILABLE',
      set_kept_until: '1970-01-01T01:00:00Z',
      next_attempt: undefined,
    });
  });

  it('a removal that fails is its own lease.failed; the outcome is still the deny', async () => {
    const h = harness();
    old(h);
    h.setRemoveFails(true);
    const loop = denials.ERR_POLICY_DENIED!(h);
    await expect(loop.attemptOnce(undefined, { write: true })).rejects.toMatchObject({
      code: 'ERR_POLICY_DENIED',
    });
    expect(h.names()).toEqual(['lease.failed', 'lease.denied']);
    expect(h.leaseEvents()[0]).toMatchObject({ message: 'EROFS', next_attempt: undefined });
  });

  it('credential-process (write: false) neither reads nor removes the sink on a deny', async () => {
    const h = harness();
    old(h);
    const loop = denials.ERR_POLICY_DENIED!(h);
    await expect(loop.attemptOnce(undefined, { write: false })).rejects.toMatchObject({
      code: 'ERR_POLICY_DENIED',
    });
    expect(h.onDisk()?.accessKeyId).toBe('AKold');
    expect(h.calls.removes).toBe(0);
    expect(h.names()).toEqual(['lease.denied']);
  });

  it('one-shot events carry no next_refresh or next_attempt; the daemon events do', async () => {
    const h = harness();
    await h.newLoop().attemptOnce(undefined, { write: true });
    const once = h.events.find((e) => e.event === 'lease.acquired')!;
    expect(once).not.toHaveProperty('next_refresh', expect.anything());
    expect(JSON.parse(JSON.stringify(once))).not.toHaveProperty('next_refresh');
    const done = h.start();
    await h.clock.advanceTo(0);
    expect(h.events.filter((e) => e.event === 'lease.acquired').at(-1)).toHaveProperty(
      'next_refresh',
      expect.any(String),
    );
    h.stop();
    await done;
  });

  it('a daemon restart that finds a set and is denied at once removes it (lease.revoked names it)', async () => {
    const h = harness();
    old(h);
    denials.ERR_POLICY_DENIED!(h);
    const done = h.start();
    await h.clock.advanceTo(0);
    expect(h.onDisk()).toBeUndefined();
    expect(h.names()).toEqual(['lease.revoked', 'lease.denied']);
    expect(h.events.find((e) => e.event === 'lease.revoked')).toMatchObject({ access_key_id: 'AKold' });
    h.stop();
    await done;
  });

  it('a write whose outcome is unknown (committed) then a deny: the set that may be live is removed', async () => {
    const h = harness();
    const done = h.start();
    h.setWriteFailsCommitted(true);
    await h.clock.advanceTo(0);
    expect(h.names()).toEqual(['lease.failed']);
    expect(h.onDisk()?.accessKeyId).toBe('AK0');
    denials.ERR_POLICY_DENIED!(h);
    h.loop.refreshNow();
    await h.clock.advanceTo(1);
    expect(h.onDisk()).toBeUndefined();
    expect(h.names()).toEqual(['lease.failed', 'lease.revoked', 'lease.denied']);
    expect(h.events.find((e) => e.event === 'lease.revoked')).toMatchObject({ access_key_id: 'AK0' });
    h.stop();
    await done;
  });
});
