/**
 * The identity exchange through a real Keycloak from pods on the real kubelet: `helm template` of
 * helm/example-app with `identity.exchange: client-assertion`; the kubelet projects the pod's token with the
 * realm's issuer URL as its audience, the sidecar presents it to Keycloak (federated client authentication:
 * the realm's `kubernetes` identity provider trusts the API server's issuer, test/stack/kube-issuer.ts), and
 * the Keycloak token goes on to the decision server stand-in (verifying it against the realm's JWKS) and to the
 * real Ceph RGW (trusting the realm's issuer). One release per Keycloak client: a well-configured one, and
 * three that must fail closed in the pod (another tenant, no tenant, no client for the service account).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDecisionServer, type DecisionServer } from '../stack/decision-server.ts';
import {
  createRealm,
  deleteRealm,
  ensureKeycloak,
  keycloakUsable,
  type KeycloakRealm,
  type KeycloakStack,
} from '../stack/keycloak.ts';
import { trustRealm } from '../stack/keycloak-stack.ts';
import type { RgwTenantSetup } from '../stack/ceph-rgw.ts';
import { nodeGate, podVolumeDir, skipNode } from '../stack/kube-node.ts';
import {
  APP_CONTAINER,
  BUCKET,
  containerStatus,
  podReady,
  PREFIX,
  SIDECAR_CONTAINER,
  startPodStack,
  TENANT,
  type Obj,
  type PodStack,
  events,
  waitReadyOrRefused,
} from './support.ts';

const gate = nodeGate('test/node/keycloak-pod.test.ts');
const kcUsable = keycloakUsable();
const kcSkip = 'reason' in kcUsable && process.env.STSTEST_REQUIRE_KEYCLOAK !== '1';
if (kcSkip) console.warn(`[keycloak-pod.test] skipped: ${kcUsable.reason}`);

/** The vending audience Keycloak adds to its tokens (what the decision server and RGW expect). */
const KC_AUDIENCE = 'sts.pods.keycloak';

describe.skipIf(skipNode || kcSkip)(`the identity exchange through Keycloak from a pod${gate}`, () => {
  let s: PodStack;
  let kc: KeycloakStack;
  let realm: KeycloakRealm;
  let decision: DecisionServer;
  let trust: RgwTenantSetup;
  const dir = mkdtempSync(join(tmpdir(), 'sts-kc-pods-'));
  const realmName = `pods-${randomBytes(4).toString('hex')}`;
  const sa = (release: string) => `system:serviceaccount:${s.namespace}:${release}`;

  beforeAll(async () => {
    if ('reason' in kcUsable) throw new Error(`Keycloak required but unusable: ${kcUsable.reason}`);
    [s, kc] = await Promise.all([startPodStack('pods-keycloak'), ensureKeycloak()]);
    // One client per release; the release names the ServiceAccount, hence the token's sub.
    const clients = [
      { release: 'kc-app', tenant: TENANT },
      { release: 'kc-other', tenant: 'team-b' },
      { release: 'kc-untagged', tenant: undefined },
    ].map((c) => ({
      serviceAccount: sa(c.release),
      clientId: c.release,
      tenant: c.tenant,
      audience: KC_AUDIENCE,
    }));
    realm = await createRealm(kc, { realm: realmName, saIssuerUrl: s.issuerUrl, clients });
    const policyFile = join(dir, 'policy.json');
    writeFileSync(
      policyFile,
      JSON.stringify({
        rules: [
          {
            tenant: TENANT,
            subject: '*',
            bucket: BUCKET,
            prefix: PREFIX,
            actions: ['read', 'write', 'list'],
          },
        ],
      }),
    );
    decision = await startDecisionServer({
      policyFile,
      issuerUrl: realm.issuer,
      jwksUrl: realm.jwksUrl,
      audience: KC_AUDIENCE,
    });
    trust = await trustRealm(s.rgw, realm, {
      audiences: [KC_AUDIENCE, ...clients.map((c) => c.clientId)],
      bucket: BUCKET,
      roleName: `kc-${realmName}`,
    });
  }, 300_000);
  afterAll(async () => {
    await Promise.allSettled([s?.close(), decision?.close(), kc && deleteRealm(kc, realmName)]);
    rmSync(dir, { recursive: true, force: true });
  });

  const values = () =>
    s.values({
      flexAuthUrl: decision.url,
      roleArn: trust.roleArn,
      audience: KC_AUDIENCE,
      identity: { exchange: 'client-assertion', tokenUrl: realm.tokenUrl, tokenAudience: realm.issuer },
    });

  it('the kubelet-projected token traded at Keycloak: the lease carries the realm’s identity, aioboto3 in the app writes inside the prefix only', async () => {
    const docs = await s.install('kc-app', await values());
    // The projected token's audience is the realm's issuer (what Keycloak's federated client auth demands).
    const deployment = docs.find((d) => d.kind === 'Deployment') as Obj;
    const volumes = ((((deployment.spec as Obj).template as Obj).spec as Obj).volumes ?? []) as Obj[];
    const projected = volumes.find((v) => v.name === 'sts-sidecar-token')?.projected as Obj;
    expect((projected.sources as Obj[])[0]).toMatchObject({
      serviceAccountToken: { audience: realm.issuer },
    });

    const pod = await waitReadyOrRefused(s, 'kc-app');
    const app = await s.waitLog(pod, APP_CONTAINER, 'a first S3 call', (l) => events(l, 's3').length > 0);
    const acquired = events(s.json(pod, SIDECAR_CONTAINER), 'lease.acquired');
    expect(acquired, 'the sidecar logged its first set').toHaveLength(1);
    expect(acquired[0]).toMatchObject({
      issuer: realm.issuer,
      tenant: TENANT,
      principal_type: 'workload',
      assurance: 'k8s-projected-sa',
      workload_subject: sa('kc-app'),
    });
    // The decision server verified Keycloak's token: its subject is Keycloak's service-account user.
    const allowed = decision.decisions.find((d) => d.decision === 'allow');
    expect(allowed).toMatchObject({ tenant: TENANT, subject: acquired[0]?.subject });
    expect(acquired[0]?.subject).not.toBe(sa('kc-app'));

    expect(events(app, 'start')[0]?.refs_present).toBe(true);
    const first = events(app, 's3')[0];
    expect(first?.inside, 'aioboto3 put inside the granted prefix').toBe('ok');
    expect(first?.outside, 'aioboto3 put outside the prefix').toBe('AccessDenied');
  }, 240_000);

  it('fail closed in the pod: another tenant, no tenant claim, no Keycloak client for the service account', async () => {
    const cases = [
      { release: 'kc-other', code: 'ERR_TOKEN_TENANT_MISMATCH' },
      { release: 'kc-untagged', code: 'ERR_TOKEN_TENANT_MISSING' },
      { release: 'kc-stranger', code: 'ERR_IDP_REFUSED' },
    ];
    const before = decision.requestCount;
    for (const c of cases) await s.install(c.release, await values());
    for (const c of cases) {
      const pod = await s.waitPod(
        c.release,
        'a sidecar container',
        (p) => containerStatus(p, SIDECAR_CONTAINER) !== undefined,
      );
      const sidecar = await s.waitLog(
        pod,
        SIDECAR_CONTAINER,
        `two lease.denied ${c.code}`,
        (l) => events(l, 'lease.denied').filter((e) => e.code === c.code).length >= 2,
      );
      expect(events(sidecar, 'lease.acquired'), `${c.release}: no set`).toEqual([]);
      expect(events(sidecar, 'lease.denied')[0]).toMatchObject({
        code: c.code,
        workload_subject: sa(c.release),
      });
      // No set on disk: the credentials emptyDir the kubelet mounted stays empty.
      const [now] = await s.pods(c.release);
      const current = now ?? pod;
      const creds = podVolumeDir(
        s.node,
        String((current.metadata as Obj).uid),
        'kubernetes.io~empty-dir',
        'sts-sidecar-credentials',
      );
      expect(readdirSync(creds), `${c.release}: the credentials directory`).toEqual([]);
      // The startupProbe holds the pod: not Ready, the sidecar not started, the app never run.
      expect(podReady(current), `${c.release} Ready`).toBe(false);
      expect(containerStatus(current, SIDECAR_CONTAINER)?.started, `${c.release}: sidecar started`).toBe(
        false,
      );
      expect(containerStatus(current, APP_CONTAINER)?.state, `${c.release}: app`).not.toHaveProperty(
        'running',
      );
      expect(s.json(current, APP_CONTAINER), `${c.release}: app log`).toEqual([]);
    }
    // Refused before flex-auth: the decision server saw none of them.
    expect(decision.requestCount).toBe(before);
  }, 240_000);
});
