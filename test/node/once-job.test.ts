/**
 * examples/once-job.yaml, as the file is, run to completion by the real kube-controller-manager's Job
 * controller and a real kubelet (test/stack/kube-node.sh): the init container `sts-sidecar once` (the
 * sidecar image built without Docker) writes one set from the kubelet-projected token, then the example's
 * main container (an AWS CLI image, test/stack/app-images.sh awscli) exports the files and lists the prefix
 * on the real Ceph RGW. Only onThisStack's documented patch stands between the file and what runs.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { rgwS3Client } from '../stack/ceph-rgw.ts';
import { containerJson, containerLog, nodeGate, skipNode } from '../stack/kube-node.ts';
import { uniqueNamespace, verdict } from '../stack/kube.ts';
import { awsCliImage, SIDECAR_IMAGE } from '../stack/node-images.ts';
import {
  AUDIENCE,
  BUCKET,
  containerStatus,
  kubeRaw,
  onThisNode,
  PREFIX,
  startPodStack,
  TENANT,
  until,
  type Obj,
  type PodStack,
  events,
} from './support.ts';

const gate = nodeGate('test/node/once-job.test.ts');
const EXAMPLE = join(
  resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'),
  'examples',
  'once-job.yaml',
);
const INIT = 'sts-sidecar-init';
const MAIN = 'export';
const JOB = 'artifact-export';

/** The example's sample values, each replaced (wherever it occurs, the main container's script too). */
interface StackValues {
  namespace: string;
  sidecarImage: string;
  cliImage: string;
  flexAuthUrl: string;
  stsEndpoint: string;
  roleArn: string;
  bucket: string;
  audience: string;
  backoffLimit?: number;
}

/**
 * The whole patch between examples/once-job.yaml and what this test creates. It changes:
 * - `metadata.namespace` (`team-a`) of both documents to the test's namespace;
 * - the images: `ghcr.io/example-org/sts-sidecar:0.1.0` to the sidecar image built without Docker,
 *   `amazon/aws-cli:2.27.0` to the AWS CLI image built here (AWS CLI v1 from PyPI: the same `aws s3 ls`);
 * - the sample values, in every string they occur in: the flex-auth URL, the STS endpoint (also the
 *   `--endpoint-url` of the main container's script), the role ARN, the token audience (the sidecar's
 *   setting and the projected token's), the bucket `artifacts` (STS_SIDECAR_BUCKET and the script's
 *   `s3://artifacts/`); tenant `team-a` and prefix `team-a/` are the stack's already;
 * - the internal CA: the stack's RGW and decision server speak plain http on 127.0.0.1, so the
 *   `internal-ca` volume, its two mounts, STS_SIDECAR_CA_FILE and AWS_CA_BUNDLE go;
 * - onThisNode (support.ts): hostNetwork and the not-ready toleration this node needs;
 * - `backoffLimit`, only when given (the fail-closed case sets 0: one failed pod fails the Job).
 * Nothing else: the ServiceAccount, fsGroup, UIDs, `once`, the script, restartPolicy, deadlines stay.
 */
function onThisStack(docs: Obj[], v: StackValues): Obj[] {
  const replacements: [string, string][] = [
    ['https://flex-auth.auth.svc/v1/decisions', v.flexAuthUrl],
    ['https://rgw.storage.svc:7480', v.stsEndpoint],
    ['arn:aws:iam:::role/artifact-store', v.roleArn],
    ['sts.example.com', v.audience],
    ['s3://artifacts/', `s3://${v.bucket}/`],
    ['ghcr.io/example-org/sts-sidecar:0.1.0', v.sidecarImage],
    ['amazon/aws-cli:2.27.0', v.cliImage],
  ];
  const replace = (x: unknown): unknown => {
    if (typeof x === 'string') return replacements.reduce((s, [from, to]) => s.split(from).join(to), x);
    if (Array.isArray(x)) return x.map(replace);
    if (x && typeof x === 'object')
      return Object.fromEntries(Object.entries(x as Obj).map(([k, val]) => [k, replace(val)]));
    return x;
  };
  return docs.map((original) => {
    const doc = replace(original) as Obj;
    (doc.metadata as Obj).namespace = v.namespace;
    if (doc.kind !== 'Job') return doc;
    const jobSpec = doc.spec as Obj;
    if (v.backoffLimit !== undefined) jobSpec.backoffLimit = v.backoffLimit;
    const spec = (jobSpec.template as Obj).spec as Obj;
    spec.volumes = (spec.volumes as Obj[]).filter((vol) => vol.name !== 'internal-ca');
    for (const c of [...(spec.initContainers as Obj[]), ...(spec.containers as Obj[])]) {
      c.volumeMounts = (c.volumeMounts as Obj[]).filter((m) => m.name !== 'internal-ca');
      c.env = (c.env as Obj[])
        .filter((e) => e.name !== 'STS_SIDECAR_CA_FILE' && e.name !== 'AWS_CA_BUNDLE')
        .map((e) => (e.name === 'STS_SIDECAR_BUCKET' ? { ...e, value: v.bucket } : e));
    }
    return onThisNode(doc);
  });
}

function example(): Obj[] {
  return parseAllDocuments(readFileSync(EXAMPLE, 'utf8')).map((d) => d.toJSON() as Obj);
}

const condition = (job: Obj, type: string) =>
  (((job.status as Obj | undefined)?.conditions as Obj[] | undefined) ?? []).find(
    (c) => c.type === type && c.status === 'True',
  );

describe.skipIf(skipNode)(`examples/once-job.yaml on a real node${gate}`, () => {
  let s: PodStack;
  let cliImage: string;
  const extraNamespaces: string[] = [];
  beforeAll(async () => {
    s = await startPodStack('once-job');
    const t0 = Date.now();
    cliImage = await awsCliImage();
    console.info(`[once-job] AWS CLI image built (or found) and imported in ${Date.now() - t0} ms`);
  }, 300_000);
  afterAll(async () => {
    for (const ns of extraNamespaces)
      await kubeRaw(s.kubeStack, 'DELETE', `/api/v1/namespaces/${ns}`).catch(() => undefined);
    await s?.close();
  });

  const values = (namespace: string, extra: Partial<StackValues> = {}): StackValues => ({
    namespace,
    sidecarImage: SIDECAR_IMAGE,
    cliImage,
    flexAuthUrl: s.decision.url,
    stsEndpoint: s.rgw.endpoint,
    roleArn: s.tenant.roleArn,
    bucket: BUCKET,
    audience: AUDIENCE,
    ...extra,
  });

  async function run(docs: Obj[], namespace: string): Promise<void> {
    for (const doc of docs) {
      const r = await s.kube.create(doc, namespace, { dryRun: false });
      if (r.status !== 201) throw new Error(`create ${String(doc.kind)}: ${verdict(r)}`);
    }
  }
  const job = async (namespace: string): Promise<Obj> =>
    (await s.kube.request('GET', `/apis/batch/v1/namespaces/${namespace}/jobs/${JOB}`)).body;
  const jobPod = async (namespace: string): Promise<Obj | undefined> => {
    const r = await s.kube.request(
      'GET',
      `/api/v1/namespaces/${namespace}/pods?labelSelector=${encodeURIComponent(`batch.kubernetes.io/job-name=${JOB}`)}`,
    );
    return ((r.body.items as Obj[] | undefined) ?? [])[0];
  };
  const podName = (pod: Obj) => String((pod.metadata as Obj).name);

  it('runs to completion: `once` writes a set from the pod’s token, the AWS CLI lists the prefix with it', async () => {
    const key = `${PREFIX}once-job-${randomUUID()}.txt`;
    await rgwS3Client(s.rgw).send(
      new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'put by the test before the Job' }),
    );
    const createdAt = Date.now();
    await run(onThisStack(example(), values(s.namespace)), s.namespace);

    const done = await until('the Job to complete (status.succeeded == 1)', 120_000, async () => {
      const j = await job(s.namespace);
      return (j.status as Obj | undefined)?.succeeded === 1 || condition(j, 'Failed') ? j : undefined;
    });
    const pod = await jobPod(s.namespace);
    expect(pod, 'the Job made a pod').toBeDefined();
    const mainLog = containerLog(s.node, s.namespace, podName(pod ?? {}), MAIN);
    const initLog = containerJson(s.node, s.namespace, podName(pod ?? {}), INIT);
    expect(
      condition(done, 'Failed'),
      `the Job failed; main container: ${JSON.stringify(mainLog)}`,
    ).toBeUndefined();
    expect((done.status as Obj).succeeded).toBe(1);
    expect(condition(done, 'Complete'), 'the Job condition Complete').toBeDefined();

    const acquired = events(initLog, 'lease.acquired');
    expect(acquired, 'the once init container logged its set').toHaveLength(1);
    expect(acquired[0]?.tenant).toBe(TENANT);
    expect(acquired[0]?.issuer).toBe(s.issuerUrl);
    expect(acquired[0]?.subject).toBe(`system:serviceaccount:${s.namespace}:${JOB}`);
    const init = (containerStatus(pod ?? {}, INIT)?.state as Obj).terminated as Obj;
    expect(init.exitCode, 'once exits 0').toBe(0);

    // `aws s3 ls` printed the object the test put: the listing was made with the set's credentials.
    const text = mainLog.map((l) => l.text);
    expect(text.some((l) => l.startsWith('credentials valid until '))).toBe(true);
    expect(
      text.some((l) => l.endsWith(` ${key.slice(PREFIX.length)}`)),
      text.join('\n'),
    ).toBe(true);
    const main = (containerStatus(pod ?? {}, MAIN)?.state as Obj).terminated as Obj;
    expect(main.exitCode).toBe(0);
    console.info(`[once-job] Job created -> Complete ${Date.now() - createdAt} ms`);
  }, 180_000);

  it('fails closed: denied, `once` exits non-zero, the main container never starts, the Job does not complete', async () => {
    const namespace = uniqueNamespace('once-job-denied');
    await s.kube.createNamespace(namespace);
    extraNamespaces.push(namespace);
    s.writePolicy({ rules: [] });
    await run(onThisStack(example(), values(namespace, { backoffLimit: 0 })), namespace);

    const failed = await until('the Job to fail', 120_000, async () => {
      const j = await job(namespace);
      return condition(j, 'Failed') || (j.status as Obj | undefined)?.succeeded ? j : undefined;
    });
    expect((failed.status as Obj).succeeded ?? 0, 'the Job did not succeed').toBe(0);
    expect(condition(failed, 'Complete')).toBeUndefined();
    expect(condition(failed, 'Failed'), 'the Job condition Failed').toBeDefined();

    const pod = await jobPod(namespace);
    expect(pod, 'the Job made a pod').toBeDefined();
    const init = (containerStatus(pod ?? {}, INIT)?.state as Obj | undefined)?.terminated as Obj | undefined;
    // Non-zero: the denial's own exit code (src/main.ts EXIT.denied), after logging the denial.
    expect(init?.exitCode, 'once exits non-zero when denied').toBe(4);
    const initLog = containerJson(s.node, namespace, podName(pod ?? {}), INIT);
    expect(events(initLog, 'lease.denied').length, 'once logged the denial').toBeGreaterThan(0);
    expect(events(initLog, 'lease.acquired')).toHaveLength(0);
    const state = (containerStatus(pod ?? {}, MAIN)?.state ?? {}) as Obj;
    expect(state.running, 'the main container never ran').toBeUndefined();
    expect(state.terminated, 'the main container never ran').toBeUndefined();
    expect(containerLog(s.node, namespace, podName(pod ?? {}), MAIN)).toEqual([]);
  }, 180_000);
});
