/**
 * The chart's Secret sink in a pod on the real kubelet: `helm template` of helm/example-app with
 * `sink.type: secret`, the sidecar writing the set into the rendered Secret through the real API server with
 * the service-account token the kubelet projects into the chart's `sts-sidecar-kube-api` volume (and the CA
 * of the `kube-root-ca.crt` ConfigMap the controller-manager publishes). The API server is not at
 * https://kubernetes.default.svc here (no kube-proxy): the chart's `extraEnv` points the sidecar at it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpTransport } from '../../src/adapters/http-transport.ts';
import { stackS3Client } from '../stack/s3-client.ts';
import { verdict } from '../stack/kube.ts';
import { nodeGate, podVolumeDir, skipNode } from '../stack/kube-node.ts';
import { recordOutput, recordSecret } from '../support/secrets.ts';
import {
  BUCKET,
  PREFIX,
  SIDECAR_CONTAINER,
  startPodStack,
  TENANT,
  type Obj,
  type PodStack,
  denyInPod,
  events,
  waitReadyOrRefused,
} from './support.ts';

const gate = nodeGate('test/node/secret-sink-pod.test.ts');

const RELEASE = 'secret-sink';
const SECRET = `${RELEASE}-sts-credentials`;
const KEYS = ['ACCESS_KEY_ID', 'ACCESS_SECRET_KEY', 'ACCESS_SESSION_TOKEN', 'EXPIRATION'];

function decode(data: Obj | undefined, key: string): string | undefined {
  const v = data?.[key];
  return typeof v === 'string' ? Buffer.from(v, 'base64').toString('utf8') : undefined;
}

describe.skipIf(skipNode)(`the chart's Secret sink in a pod on a real kubelet${gate}`, () => {
  let s: PodStack;
  let docs: Obj[];
  let pod: Obj;
  beforeAll(async () => {
    s = await startPodStack('pods-secret');
  }, 300_000);
  afterAll(async () => {
    await s?.close();
  });

  const secretPath = (name: string) => `/api/v1/namespaces/${s.namespace}/secrets/${name}`;
  const readSecret = async (name = SECRET) => {
    const r = await s.kube.request('GET', secretPath(name));
    if (r.status !== 200) throw new Error(`GET secret ${name}: ${verdict(r)}`);
    return r.body;
  };

  it('the sidecar writes a working set into the chart’s Secret with the kubelet-projected token', async () => {
    docs = await s.install(
      RELEASE,
      await s.values({
        sink: { type: 'secret' },
        // The documented route to an API server that is not https://kubernetes.default.svc.
        extraEnv: [{ name: 'STS_SIDECAR_KUBE_API_URL', value: s.kubeStack.url }],
      }),
    );
    pod = await waitReadyOrRefused(s, RELEASE);
    const sidecar = s.json(pod, SIDECAR_CONTAINER);
    recordOutput('secret-sink-pod', JSON.stringify(sidecar));
    const acquired = events(sidecar, 'lease.acquired');
    expect(acquired, 'the sidecar logged its first set').toHaveLength(1);
    expect(acquired[0]).toMatchObject({
      tenant: TENANT,
      issuer: s.issuerUrl,
      subject: `system:serviceaccount:${s.namespace}:${RELEASE}`,
    });

    const secret = await readSecret();
    const data = secret.data as Obj | undefined;
    const [accessKeyId, secretAccessKey, sessionToken, expiration] = KEYS.map((k) => decode(data, k));
    for (const v of [secretAccessKey, sessionToken]) if (v) recordSecret(v);
    expect(accessKeyId).toBe(acquired[0]?.access_key_id);
    expect(Date.parse(String(expiration))).toBeGreaterThan(Date.now());

    // The set works on the real RGW: inside the prefix only.
    const s3 = stackS3Client(s.rgw, {
      accessKeyId: String(accessKeyId),
      secretAccessKey: String(secretAccessKey),
      sessionToken: String(sessionToken),
    });
    try {
      const put = (Key: string) =>
        s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: 'from the Secret sink' }), {
          abortSignal: AbortSignal.timeout(20_000),
        });
      await expect(put(`${PREFIX}secret-sink.txt`)).resolves.toBeDefined();
      await expect(put('elsewhere/secret-sink.txt')).rejects.toMatchObject({ name: 'AccessDenied' });
    } finally {
      s3.destroy();
    }
  }, 240_000);

  it('the token and CA the sidecar used are the kubelet’s: the projected token and the kube-root-ca.crt ConfigMap, which is the API server’s serving CA', async () => {
    expect(pod, 'the Secret sink pod runs').toBeDefined();
    const dir = podVolumeDir(
      s.node,
      String((pod.metadata as Obj).uid),
      'kubernetes.io~projected',
      'sts-sidecar-kube-api',
    );
    const ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
    const configMap = await s.kube.request(
      'GET',
      `/api/v1/namespaces/${s.namespace}/configmaps/kube-root-ca.crt`,
    );
    expect(configMap.status, verdict(configMap)).toBe(200);
    expect(ca).toBe((configMap.body.data as Obj)['ca.crt']);
    expect(ca.trim()).toBe(readFileSync(s.kubeStack.caFile, 'utf8').trim());
    expect(readFileSync(join(dir, 'namespace'), 'utf8')).toBe(s.namespace);
    const token = readFileSync(join(dir, 'token'), 'utf8').trim();
    recordSecret(token);
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Obj;
    expect(claims.sub).toBe(`system:serviceaccount:${s.namespace}:${RELEASE}`);
    expect(claims.iss).toBe(s.issuerUrl);
    expect((claims['kubernetes.io'] as { pod?: { name?: string } }).pod?.name).toBe(
      (pod.metadata as Obj).name,
    );
  });

  it('the chart’s Role allows get and update of that one Secret and nothing more', async () => {
    expect(pod, 'the Secret sink pod runs').toBeDefined();
    const role = docs.find((d) => d.kind === 'Role');
    expect(role?.rules).toEqual([
      { apiGroups: [''], resources: ['secrets'], resourceNames: [SECRET], verbs: ['get', 'update'] },
    ]);
    const binding = docs.find((d) => d.kind === 'RoleBinding');
    expect(binding?.subjects).toEqual([{ kind: 'ServiceAccount', name: RELEASE, namespace: s.namespace }]);

    // Another Secret in the namespace, as a neighbour would have.
    const other = await s.kube.request('POST', `/api/v1/namespaces/${s.namespace}/secrets`, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'neighbour' },
      stringData: { password: 'not-for-the-sidecar' },
    });
    expect(other.status, verdict(other)).toBe(201);

    // The pod's own token and CA, as the sidecar in the pod holds them.
    const dir = podVolumeDir(
      s.node,
      String((pod.metadata as Obj).uid),
      'kubernetes.io~projected',
      'sts-sidecar-kube-api',
    );
    const token = readFileSync(join(dir, 'token'), 'utf8').trim();
    recordSecret(token);
    const transport = createHttpTransport({
      ca: [readFileSync(join(dir, 'ca.crt'), 'utf8')],
      maxResponseBytes: 1 << 20,
    });
    const asPod = async (method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown) => {
      const res = await transport({
        url: `${s.kubeStack.url}${path}`,
        method,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(20_000),
      });
      return { status: res.status, body: JSON.parse(res.body) as Obj };
    };
    const can = async (verb: string, name?: string) => {
      const r = await asPod('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: {
          resourceAttributes: {
            namespace: s.namespace,
            verb,
            resource: 'secrets',
            ...(name ? { name } : {}),
          },
        },
      });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return (r.body.status as { allowed?: boolean }).allowed === true;
    };
    const verdicts: Record<string, boolean> = {};
    for (const [verb, name] of [
      ['get', SECRET],
      ['update', SECRET],
      ['patch', SECRET],
      ['delete', SECRET],
      ['get', 'neighbour'],
      ['update', 'neighbour'],
      ['list', undefined],
      ['watch', undefined],
      ['create', undefined],
    ] as const)
      verdicts[`${verb} ${name ?? '*'}`] = await can(verb, name);
    expect(verdicts).toEqual({
      [`get ${SECRET}`]: true,
      [`update ${SECRET}`]: true,
      [`patch ${SECRET}`]: false,
      [`delete ${SECRET}`]: false,
      'get neighbour': false,
      'update neighbour': false,
      'list *': false,
      'watch *': false,
      'create *': false,
    });

    // And the real calls: its own Secret readable, the neighbour refused for reading and writing.
    expect((await asPod('GET', secretPath(SECRET))).status).toBe(200);
    const read = await asPod('GET', secretPath('neighbour'));
    expect(read.status).toBe(403);
    const write = await asPod('PUT', secretPath('neighbour'), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'neighbour' },
      stringData: { password: 'overwritten' },
    });
    expect(write.status).toBe(403);
    expect((await asPod('GET', `/api/v1/namespaces/${s.namespace}/secrets`)).status).toBe(403);
    expect(decode((await readSecret('neighbour')).data as Obj, 'password')).toBe('not-for-the-sidecar');
  });

  it('a deny removes the four keys from the Secret and keeps what another writer put there', async () => {
    expect(pod, 'the Secret sink pod runs').toBeDefined();
    // Another writer's key (README: "a concurrent writer's change is re-read and kept").
    const current = await readSecret();
    const put = await s.kube.request('PUT', secretPath(SECRET), {
      ...current,
      data: { ...(current.data as Obj), NOTE: Buffer.from('kept').toString('base64') },
    });
    expect(put.status, verdict(put)).toBe(200);

    const sidecar = await denyInPod(s, RELEASE, pod);
    expect(events(sidecar, 'lease.denied').length).toBeGreaterThan(0);
    const data = ((await readSecret()).data ?? {}) as Obj;
    expect(Object.keys(data)).toEqual(['NOTE']);
    expect(decode(data, 'NOTE')).toBe('kept');
  }, 120_000);
});
