// Issue 9: the identity exchange against a real Keycloak 26.4 (federated client authentication with the
// projected token), then the decision server verifying Keycloak's token against Keycloak's JWKS, then the
// real Ceph RGW trusting Keycloak's issuer, then boto3. The service-account issuer is the local stand-in
// (test/stack/oidc-issuer.ts): no kube-apiserver runs here.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boto3Available, runBoto3 } from '../consumers/support.ts';
import { rgwUsable } from '../stack/ceph-rgw.ts';
import { ensureKeycloak, keycloakUsable, stopKeycloak } from '../stack/keycloak.ts';
import { startKeycloakStack, type KeycloakLocalStack } from '../stack/keycloak-stack.ts';
import { healthPort, nextEvent, snapshotDir, visibleNames } from '../reliability/support/harness.ts';
import { documentedMetrics, missingMetrics } from '../support/documented.ts';
import { runSidecarCommand, startSidecar, type SidecarProcess } from '../support/sidecar-process.ts';

const kc = keycloakUsable();
const rgw = rgwUsable();
const requireKc = process.env.STSTEST_REQUIRE_KEYCLOAK === '1';
const requireRgw = process.env.STSTEST_REQUIRE_RGW === '1';
const skipReason = 'reason' in kc ? kc.reason : 'reason' in rgw ? rgw.reason : undefined;
const skip = skipReason !== undefined && !requireKc && !requireRgw;
if (skip) console.warn(`[keycloak.test] skipped: ${skipReason}`);

const SA = {
  app: 'system:serviceaccount:team-a:app',
  otherTenant: 'system:serviceaccount:team-a:mislabelled',
  noTenant: 'system:serviceaccount:team-a:untagged',
  noClient: 'system:serviceaccount:team-a:stranger',
};
const AUDIENCE = 'sts.sidecar.test';
const FAST = {
  STS_SIDECAR_BACKOFF_INITIAL_SECONDS: '0.2',
  STS_SIDECAR_BACKOFF_MAX_SECONDS: '1',
  STS_SIDECAR_REQUEST_TIMEOUT_SECONDS: '3',
};

describe.skipIf(skip)(`identity exchange at a real Keycloak${skipReason ? ` (${skipReason})` : ''}`, () => {
  let stack: KeycloakLocalStack;
  let home: string;
  const run = randomBytes(4).toString('hex');

  beforeAll(async () => {
    if (skipReason !== undefined) throw new Error(`Keycloak/RGW required but unusable: ${skipReason}`);
    const boto3 = boto3Available();
    if (!boto3.ok) throw new Error(boto3.reason);
    stack = await startKeycloakStack({
      audience: AUDIENCE,
      clients: [
        { serviceAccount: SA.app, clientId: 'team-a-app', tenant: 'team-a', audience: AUDIENCE },
        {
          serviceAccount: SA.otherTenant,
          clientId: 'team-a-mislabelled',
          tenant: 'team-b',
          audience: AUDIENCE,
        },
        { serviceAccount: SA.noTenant, clientId: 'team-a-untagged', tenant: undefined, audience: AUDIENCE },
      ],
    });
    home = await mkdtemp(path.join(os.tmpdir(), 'kc-consumer-home-'));
  }, 240_000);

  afterAll(async () => {
    await stack?.close();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('SA token -> Keycloak -> flex-auth (Keycloak JWKS) -> RGW -> files -> boto3 inside the prefix only', async () => {
    const saToken = await stack.rotateToken(SA.app);
    const decisionsBefore = stack.decision.decisions.length;
    const once = await runSidecarCommand(stack.env, ['once']);
    expect(once.code, once.stderr).toBe(0);
    const acquired = once.lines.find((l) => l.event === 'lease.acquired');
    expect(acquired).toMatchObject({
      issuer: stack.realm.issuer,
      tenant: 'team-a',
      principal_type: 'workload',
      assurance: 'k8s-projected-sa',
      workload_subject: SA.app,
    });
    // The flex-auth stand-in verified a Keycloak token (its subject is Keycloak's service-account user).
    const decision = stack.decision.decisions[decisionsBefore];
    expect(decision).toMatchObject({ decision: 'allow', tenant: 'team-a', subject: acquired?.subject });
    expect(decision?.subject).not.toBe(SA.app);
    expect(once.stdout + once.stderr).not.toContain(saToken);

    const r = await runBoto3({
      HOME: home,
      CONSUMER_ENDPOINT: stack.rgw.stack.endpoint,
      CONSUMER_BUCKET: stack.bucket,
      AWS_SHARED_CREDENTIALS_FILE: path.join(home, 'no-credentials'),
      CONSUMER_MODE: 'files',
      CONSUMER_KEY: `${stack.prefix}${run}/kc.txt`,
      CONSUMER_FORBIDDEN_KEY: `team-b/${run}/kc.txt`,
      ARTIFACTSTORE_S3_ACCESS_KEY_REF: path.join(stack.outputDir, 'access-key'),
      ARTIFACTSTORE_S3_SECRET_KEY_REF: path.join(stack.outputDir, 'secret-key'),
      ARTIFACTSTORE_S3_SESSION_TOKEN_REF: path.join(stack.outputDir, 'session-token'),
      ARTIFACTSTORE_S3_CREDENTIAL_EXPIRATION_REF: path.join(stack.outputDir, 'expiration'),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ put: 'ok', get: expect.any(String) as string });
    expect(String(r.json?.forbidden_put)).toMatch(/403/);
  });

  it.each([
    ['another tenant in the tenant mapper', SA.otherTenant, 'ERR_TOKEN_TENANT_MISMATCH'],
    ['no tenant mapper', SA.noTenant, 'ERR_TOKEN_TENANT_MISSING'],
    ['no Keycloak client for the service account', SA.noClient, 'ERR_IDP_REFUSED'],
  ])(
    '%s: fail closed before flex-auth and the STS (%s), removing the set an earlier once wrote',
    async (_name, sa, code) => {
      await stack.rotateToken(SA.app);
      const first = await runSidecarCommand(stack.env, ['once']);
      expect(first.code, first.stderr).toBe(0);
      const acquired = first.lines.find((l) => l.event === 'lease.acquired');
      expect(visibleNames(await snapshotDir(stack.outputDir))).toHaveLength(5);
      await stack.rotateToken(sa);
      const requests = stack.decision.requestCount;
      const once = await runSidecarCommand(stack.env, ['once']);
      expect(once.code, once.stderr).toBe(4);
      // Fail closed like the daemon: the set is gone (no visible name, no generation directory) before exit 4.
      const after = await snapshotDir(stack.outputDir);
      expect(visibleNames(after)).toEqual([]);
      expect(Object.keys(after.entries)).toEqual([]);
      expect(once.lines.map((l) => l.event)).toEqual(['lease.revoked', 'lease.denied']);
      expect(once.lines[0]).toMatchObject({ reason: 'denied', access_key_id: acquired?.access_key_id });
      expect(once.lines[1]).toMatchObject({ code, workload_subject: sa });
      expect(once.lines[1]).not.toHaveProperty('next_attempt');
      // `once` reports the attempt's error on stderr (the daemon's lease.denied is covered below).
      expect(once.stderr).toContain(`(${code})`);
      if (code === 'ERR_IDP_REFUSED') {
        expect(once.stderr).toContain('invalid_client');
        expect(once.stderr).not.toContain('Invalid client or Invalid client credentials');
      }
      expect(stack.decision.requestCount).toBe(requests);
    },
  );

  describe('the daemon', () => {
    let p: SidecarProcess | undefined;
    afterAll(async () => {
      p?.kill();
      await p?.exited;
    });

    it('/metrics has every metric the docs name, and a request-duration series for each documented target', async () => {
      await stack.rotateToken(SA.app);
      p = startSidecar({ ...stack.env, ...FAST }, ['run'], { label: 'kc-metrics' });
      const port = await healthPort(p);
      await p.waitForEvent('lease.acquired', 30_000);
      const documented = documentedMetrics();
      expect(documented.targets).toEqual(['flex_auth', 'idp', 'sts']);
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.status).toBe(200);
      expect(missingMetrics(await res.text(), documented)).toEqual([]);
      p.kill();
      await p.exited;
      p = undefined;
    }, 90_000);

    it('a service account that loses its client is denied: the set is removed', async () => {
      await stack.rotateToken(SA.app);
      p = startSidecar({ ...stack.env, ...FAST }, ['run'], { label: 'kc-deny' });
      await healthPort(p);
      await p.waitForEvent('lease.acquired', 30_000);
      expect(visibleNames(await snapshotDir(stack.outputDir))).toHaveLength(5);
      await stack.rotateToken(SA.noClient);
      const from = p.lines.length;
      p.child.kill('SIGHUP');
      const denied = await nextEvent(p, ['lease.denied', 'lease.failed', 'lease.renewed'], from);
      expect(denied.line).toMatchObject({
        event: 'lease.denied',
        code: 'ERR_IDP_REFUSED',
        reasons: ['ERR_IDP_REFUSED', 'invalid_client'],
        workload_subject: SA.noClient,
      });
      await nextEvent(p, ['lease.revoked'], from);
      expect(visibleNames(await snapshotDir(stack.outputDir))).toHaveLength(0);
      p.kill();
      await p.exited;
      p = undefined;
    }, 90_000);

    it('Keycloak stopped mid-run: the set is kept, then renewed after Keycloak is back', async () => {
      await stack.rotateToken(SA.app);
      p = startSidecar({ ...stack.env, ...FAST }, ['run'], { label: 'kc-outage' });
      await healthPort(p);
      await p.waitForEvent('lease.acquired', 30_000);
      await stopKeycloak();
      try {
        const from = p.lines.length;
        p.child.kill('SIGHUP');
        const failed = await nextEvent(p, ['lease.failed', 'lease.denied', 'lease.renewed'], from);
        expect(failed.line).toMatchObject({
          event: 'lease.failed',
          code: 'ERR_IDP_UNAVAILABLE',
          retryable: true,
        });
        expect(failed.line.set_kept_until).toEqual(expect.any(String));
        expect(visibleNames(await snapshotDir(stack.outputDir))).toHaveLength(5);
      } finally {
        await ensureKeycloak();
      }
      // The set still has most of its life, so the loop's own retry is spread over a part of it
      // (src/domain/schedule.ts, minutes for this lease): SIGHUP retries now, as an operator would. The
      // realm survived the restart.
      const renewFrom = p.lines.length;
      p.child.kill('SIGHUP');
      await p.waitForEvent('lease.renewed', 60_000, renewFrom);
      expect(visibleNames(await snapshotDir(stack.outputDir))).toHaveLength(5);
    }, 240_000);
  });
});
