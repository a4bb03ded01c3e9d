/**
 * The chart's native-sidecar pod, run by a real kubelet (test/stack/kube-node.sh) from `helm template` of
 * helm/example-app, with the sidecar image built without Docker (scripts/build-image.sh), against the real
 * Ceph RGW trusting the API server's own service-account issuer. The app is artifact-store-like Python
 * (test/node/artifact_app.py, aioboto3) running as UID 10001; at start it logs the mode, owner and group of
 * each ARTIFACTSTORE_S3_*_REF file and what a write into their mount gets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyFile } from '../stack/decision-server.ts';
import { nodeGate, skipNode } from '../stack/kube-node.ts';
import {
  APP_CONTAINER,
  BUCKET,
  containerStatus,
  freePort,
  podReady,
  PREFIX,
  SIDECAR_CONTAINER,
  startPodStack,
  TENANT,
  type Obj,
  type PodStack,
} from './support.ts';

const gate = nodeGate('test/node/native-pod.test.ts');
const events = (lines: Record<string, unknown>[], event: string) => lines.filter((l) => l.event === event);

describe.skipIf(skipNode)(`the chart's pod on a real kubelet${gate}`, () => {
  let s: PodStack;
  beforeAll(async () => {
    s = await startPodStack('pods-native');
  }, 300_000);
  afterAll(async () => {
    await s?.close();
  });

  let pod: Obj;
  it('native sidecar: the app starts only after the first set, reads the four files as another UID, and writes inside the prefix only', async () => {
    const createdAt = Date.now();
    await s.install('native', await s.values({ credentials: { wipeOnExit: true } }));
    pod = await s.waitPod('native', 'Ready', podReady, 120_000);
    const readyAt = Date.now();
    // A first S3 call, or a read of the files refused (then the assertions below say why).
    const app = await s.waitLog(
      pod,
      APP_CONTAINER,
      'a first S3 call or a failed read',
      (l) => events(l, 's3').length > 0 || events(l, 'read').some((e) => e.ok === false),
    );
    const sidecar = s.json(pod, SIDECAR_CONTAINER);

    const acquired = events(sidecar, 'lease.acquired');
    expect(acquired, 'the sidecar logged its first set').toHaveLength(1);
    expect(acquired[0]?.tenant).toBe(TENANT);
    // The projected token the kubelet wrote, issued by the API server for the pod's ServiceAccount.
    expect(acquired[0]?.issuer).toBe(s.issuerUrl);
    expect(acquired[0]?.subject).toBe(`system:serviceaccount:${s.namespace}:native`);

    // The startupProbe held the app: when it started, the four files were there.
    const start = events(app, 'start')[0];
    expect(start, 'the app logged its start').toBeDefined();
    expect(start?.refs_present, 'ARTIFACTSTORE_S3_*_REF files present when the app started').toBe(true);
    const appStarted = Date.parse(
      String(((containerStatus(pod, APP_CONTAINER)?.state as Obj).running as Obj).startedAt),
    );
    // The kubelet's startedAt has whole seconds.
    const acquiredAt = Date.parse(String(acquired[0]?.time));
    expect(acquiredAt).toBeGreaterThan(0);
    expect(appStarted).toBeGreaterThanOrEqual(Math.floor(acquiredAt / 1000) * 1000);

    // Another UID than the sidecar's 65532, reading through the chart's fsGroup and 0440 modes.
    expect(start?.uid).toBe(10001);
    expect(start?.uid).not.toBe(65532);
    expect(start?.groups, "the chart's fsGroup 65532 among the app's groups").toContain(65532);
    // What the app sees of the files (stat through the kubelet's symlinks): 0440 exactly, no world bit;
    // the chart's fsGroup as their group; owned by the sidecar, not the app; and the mount refuses writes.
    const refs = start?.refs as Record<string, Obj> | undefined;
    for (const ref of ['ACCESS_KEY', 'SECRET_KEY', 'SESSION_TOKEN', 'CREDENTIAL_EXPIRATION']) {
      expect(refs?.[ref], `ARTIFACTSTORE_S3_${ref}_REF as the app stats it`).toEqual({
        mode: '0440',
        uid: 65532,
        gid: 65532,
      });
      expect(refs?.[ref]?.uid, `the app's UID does not own ARTIFACTSTORE_S3_${ref}_REF`).not.toBe(start?.uid);
    }
    expect(start?.write, 'a new file in the credential mount, written by the app').toBe('EROFS');
    expect(events(app, 'read'), 'the app read the four files').toEqual([]);

    const first = events(app, 's3')[0];
    expect(first?.inside, 'aioboto3 put inside the granted prefix').toBe('ok');
    expect(first?.outside, 'aioboto3 put outside the prefix').toBe('AccessDenied');
    console.info(
      `[native-pod] pod created -> Ready ${readyAt - createdAt} ms; -> app's first S3 call ${
        Math.round(Number(first?.time) * 1000) - createdAt
      } ms`,
    );
  }, 240_000);

  it('native sidecar with a slow first set (the decision server answers after 4 s): the startupProbe holds the app until the set is on disk', async () => {
    // The first set usually lands before the kubelet's first probe; slowed down, only a probe that waits
    // for a set on disk (/readyz, not /healthz) keeps the app from starting without its files.
    const allow: PolicyFile = {
      rules: [
        { tenant: TENANT, subject: '*', bucket: BUCKET, prefix: PREFIX, actions: ['read', 'write', 'list'] },
      ],
    };
    s.writePolicy({ ...allow, fault: { kind: 'delay', ms: 4000 } });
    try {
      await s.install('slow', await s.values());
      const slow = await s.waitPod('slow', 'Ready', podReady, 120_000);
      const app = await s.waitLog(slow, APP_CONTAINER, 'its start', (l) => events(l, 'start').length > 0);
      const acquired = events(s.json(slow, SIDECAR_CONTAINER), 'lease.acquired')[0];
      const sidecarStarted = Date.parse(
        String(((containerStatus(slow, SIDECAR_CONTAINER)?.state as Obj).running as Obj).startedAt),
      );
      expect(
        Date.parse(String(acquired?.time)) - sidecarStarted,
        'the first set came seconds after the sidecar started',
      ).toBeGreaterThan(3000);
      expect(
        events(app, 'start')[0]?.refs_present,
        'ARTIFACTSTORE_S3_*_REF files present when the app started',
      ).toBe(true);
    } finally {
      s.writePolicy(allow);
    }
  }, 240_000);

  it('legacy mode: the once init container writes the first set before the app starts, the run sidecar keeps it', async () => {
    await s.install('legacy', await s.values({ mode: 'legacy' }));
    const legacy = await s.waitPod('legacy', 'Ready', podReady, 120_000);
    const app = await s.waitLog(legacy, APP_CONTAINER, 'a first S3 call', (l) => events(l, 's3').length > 0);
    const init = s.json(legacy, 'sts-sidecar-init');
    expect(events(init, 'lease.acquired'), 'the once init container wrote a set').toHaveLength(1);
    const initStatus = containerStatus(legacy, 'sts-sidecar-init')?.state as Obj;
    expect((initStatus.terminated as Obj | undefined)?.exitCode).toBe(0);
    expect(events(app, 'start')[0]?.refs_present).toBe(true);
    const first = events(app, 's3')[0];
    expect(first?.inside).toBe('ok');
    expect(first?.outside).toBe('AccessDenied');
    // The regular run container leases next to the app (acquired, or renewed over the once set).
    await s.waitLog(
      legacy,
      SIDECAR_CONTAINER,
      'a lease of the run sidecar',
      (l) => events(l, 'lease.acquired').length + events(l, 'lease.renewed').length > 0,
    );
  }, 240_000);

  it('the credentials endpoint: aioboto3 in the app gets its credentials through AWS_CONTAINER_CREDENTIALS_FULL_URI and the token file', async () => {
    await s.install(
      'endpoint',
      await s.values({
        credentialsEndpoint: { enabled: true, port: await freePort() },
        app: { artifactStoreEnv: false },
      }),
    );
    const pod = await s.waitPod('endpoint', 'Ready', podReady, 120_000);
    const app = await s.waitLog(pod, APP_CONTAINER, 'a first S3 call', (l) => events(l, 's3').length > 0);
    expect(events(app, 'start')[0]?.endpoint, 'the app uses the endpoint, not files').toBe(true);
    const first = events(app, 's3')[0];
    expect(first?.ok, String(first?.error)).toBe(true);
    expect(first?.inside).toBe('ok');
    expect(first?.outside).toBe('AccessDenied');
  }, 240_000);

  it('a denial (the decision server flipped, then SIGHUP) removes the set inside the pod; the next call fails', async () => {
    expect(pod, 'the native pod runs').toBeDefined();
    s.writePolicy({ rules: [] });
    const [current] = await s.pods('native');
    await s.signal(current ?? pod, SIDECAR_CONTAINER, 'SIGHUP');
    const sidecar = await s.waitLog(
      pod,
      SIDECAR_CONTAINER,
      'lease.revoked',
      (l) => events(l, 'lease.revoked').length > 0,
    );
    expect(events(sidecar, 'lease.denied').length).toBeGreaterThan(0);
    const app = await s.waitLog(pod, APP_CONTAINER, 'a failed read', (l) =>
      events(l, 'read').some((e) => e.ok === false),
    );
    const failed = events(app, 'read').find((e) => e.ok === false);
    expect(failed?.error).toBe('FileNotFoundError');
  }, 120_000);

  it('pod deletion: SIGTERM to both containers, the set wiped on exit, exit 0 within the grace period', async () => {
    expect(pod, 'the native pod runs').toBeDefined();
    s.writePolicy({
      rules: [
        {
          tenant: TENANT,
          subject: '*',
          bucket: 'pods',
          prefix: 'team-a/',
          actions: ['read', 'write', 'list'],
        },
      ],
    });
    const [current] = await s.pods('native');
    await s.signal(current ?? pod, SIDECAR_CONTAINER, 'SIGHUP');
    await s.waitLog(pod, SIDECAR_CONTAINER, 'a set again', (l) => events(l, 'lease.acquired').length > 1);
    const deletedAt = Date.now();
    await s.deletePod(current ?? pod);
    // Follow the pod until it is gone, keeping the last status seen and the logs as they grow.
    let last: Obj | undefined = current;
    let sidecar: Record<string, unknown>[] = [];
    let app: Record<string, unknown>[] = [];
    for (;;) {
      const r = await s.kube.request(
        'GET',
        `/api/v1/namespaces/${s.namespace}/pods/${String((pod.metadata as Obj).name)}`,
      );
      sidecar = s.json(pod, SIDECAR_CONTAINER).length ? s.json(pod, SIDECAR_CONTAINER) : sidecar;
      app = s.json(pod, APP_CONTAINER).length ? s.json(pod, APP_CONTAINER) : app;
      if (r.status === 404) break;
      last = r.body;
      if (Date.now() - deletedAt > 40_000) throw new Error('the pod was not gone 40 s after deletion');
      await new Promise((r2) => setTimeout(r2, 100));
    }
    const goneAfter = Date.now() - deletedAt;
    expect(events(app, 'sigterm'), 'the app got SIGTERM').toHaveLength(1);
    const stopped = events(sidecar, 'sidecar.stopped');
    expect(stopped, 'the sidecar stopped on SIGTERM').toHaveLength(1);
    expect(stopped[0]?.wiped, 'STS_SIDECAR_WIPE_ON_EXIT removed the set').toBe(true);
    const terminated = (containerStatus(last ?? {}, SIDECAR_CONTAINER)?.state as Obj | undefined)
      ?.terminated as Obj | undefined;
    if (terminated) expect(terminated.exitCode).toBe(0);
    expect(goneAfter).toBeLessThan(30_000);
  }, 120_000);
});
