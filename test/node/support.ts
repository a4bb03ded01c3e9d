/**
 * What the real-pod tests share: the chart rendered with `helm template` as a user would, the one patch
 * this node needs (onThisNode), applied through the real API server, pods run by the real kubelet; the
 * real Ceph RGW trusting the API server's own service-account issuer (test/stack/kube-issuer.ts); the
 * flex-auth stand-in (test/stack/decision-server.ts) verifying the kubelet's projected tokens.
 */
import { request as httpsRequest } from 'node:https';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureRgw, setupTenant, type RgwStack, type RgwTenantSetup } from '../stack/ceph-rgw.ts';
import { startDecisionServer, type DecisionServer, type PolicyFile } from '../stack/decision-server.ts';
import { issuerThumbprint } from '../stack/kube-issuer.ts';
import { KubeAdmin, readStack, uniqueNamespace, verdict, type KubeStack } from '../stack/kube.ts';
import { containerJson, nodeScript, readNode, type NodeStack } from '../stack/kube-node.ts';
import { pythonAppImage, SIDECAR_IMAGE } from '../stack/node-images.ts';
import { helmWorkspace, renderedDocs, type HelmWorkspace } from '../k8s/helm.ts';
import type { JsonObject } from '../k8s/support.ts';

export type Obj = Record<string, unknown>;

export const AUDIENCE = 'sts.pods.test';
export const BUCKET = 'pods';
export const TENANT = 'team-a';
export const PREFIX = 'team-a/';
export const SIDECAR_CONTAINER = 'sts-sidecar';
export const APP_CONTAINER = 'artifact-store';

/** A TCP port free on the host right now: hostNetwork pods share the host's ports. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ port: 0, host: '0.0.0.0', exclusive: true }, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * The one patch between the chart's output and this node, applied to every pod template (Deployment, Job)
 * and nothing else: the node has no CNI, so pods run in the host's network namespace (`hostNetwork`), and
 * has no address (the kubelet refuses 127.0.0.1 as a node IP), so the kubelet's HTTP probes name the host
 * they would otherwise take from the pod IP (`host: 127.0.0.1`); the node stays NotReady without CNI, so
 * pods tolerate `node.kubernetes.io/not-ready` (the scheduler would not place them, the taint manager would
 * evict them). Ports come from values (the sidecar's `port`, `credentialsEndpoint.port`).
 */
export function onThisNode(doc: Obj): Obj {
  const kind = String(doc.kind);
  const template =
    kind === 'Deployment' || kind === 'Job'
      ? ((doc.spec as Obj).template as Obj)
      : kind === 'Pod'
        ? doc
        : undefined;
  if (!template) return doc;
  const spec = template.spec as Obj;
  spec.hostNetwork = true;
  spec.tolerations = [
    ...((spec.tolerations as Obj[] | undefined) ?? []),
    { key: 'node.kubernetes.io/not-ready', operator: 'Exists' },
  ];
  for (const c of [...((spec.initContainers as Obj[]) ?? []), ...((spec.containers as Obj[]) ?? [])]) {
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
      const httpGet = (c[probe] as Obj | undefined)?.httpGet as Obj | undefined;
      if (httpGet) httpGet.host = '127.0.0.1';
    }
  }
  return doc;
}

/** A request the test client (KubeAdmin) does not make: DELETE. */
export function kubeRaw(stack: KubeStack, method: 'DELETE' | 'GET', path: string, body?: Obj): Promise<Obj> {
  const token = readFileSync(stack.tokenFile, 'utf8').trim();
  const url = new URL(`${stack.url}${path}`);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method,
        ca: readFileSync(stack.caFile),
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        timeout: 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Obj);
          } catch (err) {
            reject(err as Error);
          }
        });
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

export interface PodStack {
  readonly kube: KubeAdmin;
  readonly kubeStack: KubeStack;
  readonly node: NodeStack;
  readonly rgw: RgwStack;
  readonly tenant: RgwTenantSetup;
  readonly decision: DecisionServer;
  readonly namespace: string;
  readonly appImage: string;
  readonly issuerUrl: string;
  /** Replaces the decision server's policy (it re-reads it on every request). */
  writePolicy(policy: PolicyFile): void;
  /** Values for helm/example-app on this stack; `extra` is merged into stsSidecar. */
  values(extra?: JsonObject, top?: JsonObject): Promise<JsonObject>;
  /**
   * `helm template` of a chart of helm/ with the values (and a ServiceAccount named after the release),
   * patched by onThisNode, created in the namespace.
   */
  install(release: string, values: JsonObject, chart?: string): Promise<Obj[]>;
  pods(release: string): Promise<Obj[]>;
  waitPod(release: string, what: string, ok: (pod: Obj) => boolean, timeoutMs?: number): Promise<Obj>;
  /** The JSON log lines of a container, waiting until `ok` holds for them. */
  waitLog(
    pod: Obj,
    container: string,
    what: string,
    ok: (lines: Record<string, unknown>[]) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>[]>;
  json(pod: Obj, container: string): Record<string, unknown>[];
  deletePod(pod: Obj): Promise<void>;
  /** Sends a signal to a container's main process through the node's containerd. */
  signal(pod: Obj, container: string, signal: string): Promise<void>;
  close(): Promise<void>;
}

export function podName(pod: Obj): string {
  return String((pod.metadata as Obj).name);
}

export function containerStatus(pod: Obj, container: string): Obj | undefined {
  const status = (pod.status ?? {}) as Obj;
  const all = [
    ...((status.initContainerStatuses as Obj[] | undefined) ?? []),
    ...((status.containerStatuses as Obj[] | undefined) ?? []),
  ];
  return all.find((c) => c.name === container);
}

export function podReady(pod: Obj): boolean {
  const conditions = ((pod.status as Obj | undefined)?.conditions as Obj[] | undefined) ?? [];
  return conditions.some((c) => c.type === 'Ready' && c.status === 'True');
}

/** Polls `probe` every 250 ms until it gives a value; throws naming `what` after `timeoutMs`. */
export async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * RGW trusts the API server's issuer for the pods' audience: its OIDC provider (with the thumbprint of the
 * certificate kube-issuer.ts serves), a role for AssumeRoleWithWebIdentity, the bucket. Idempotent; the
 * node's globalSetup calls it once so that test files running in parallel only find it done.
 */
export async function trustKubeIssuer(rgw: RgwStack, issuerUrl: string): Promise<RgwTenantSetup> {
  return setupTenant(rgw, {
    issuerUrl,
    thumbprint: await issuerThumbprint(issuerUrl),
    audience: AUDIENCE,
    bucket: BUCKET,
    roleName: 'kubelet-pods',
    maxSessionDuration: 3600,
  });
}

export async function startPodStack(label: string): Promise<PodStack> {
  const kubeStack = readStack();
  const kube = new KubeAdmin(kubeStack);
  const node = readNode();
  const rgw = await ensureRgw();
  const issuerUrl = kubeStack.issuer;
  const tenant = await trustKubeIssuer(rgw, issuerUrl);
  const dir = mkdtempSync(join(tmpdir(), 'sts-pods-'));
  const policyFile = join(dir, 'policy.json');
  const writePolicy = (p: PolicyFile): void => writeFileSync(policyFile, JSON.stringify(p));
  writePolicy({
    rules: [
      { tenant: TENANT, subject: '*', bucket: BUCKET, prefix: PREFIX, actions: ['read', 'write', 'list'] },
    ],
  });
  const decision = await startDecisionServer({ policyFile, issuerUrl, audience: AUDIENCE });
  let helm: HelmWorkspace | undefined;
  const namespace = uniqueNamespace(label);
  try {
    const appImage = await pythonAppImage({
      APP_S3_ENDPOINT: rgw.endpoint,
      APP_S3_REGION: rgw.region,
      APP_BUCKET: BUCKET,
      APP_PREFIX: PREFIX,
    });
    helm = await helmWorkspace();
    await kube.createNamespace(namespace);
    const ws = helm;
    const [repository, tag] = SIDECAR_IMAGE.split(':') as [string, string];
    const [appRepository, appTag] = appImage.split(':') as [string, string];

    const stack: PodStack = {
      kube,
      kubeStack,
      node,
      rgw,
      tenant,
      decision,
      namespace,
      appImage,
      issuerUrl,
      writePolicy,
      async values(extra = {}, top = {}) {
        return {
          image: { repository: appRepository, tag: appTag, pullPolicy: 'Never' },
          resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '256Mi' } },
          // On the host network a containerPort is a host port: one of its own per release.
          containerPort: await freePort(),
          ...top,
          stsSidecar: {
            image: { repository, tag, pullPolicy: 'Never' },
            tenant: TENANT,
            bucket: BUCKET,
            prefix: PREFIX,
            actions: ['read', 'write', 'list'],
            flexAuthUrl: decision.url,
            stsEndpoint: rgw.endpoint,
            region: rgw.region,
            backend: 'ceph-rgw',
            roleArn: tenant.roleArn,
            audience: AUDIENCE,
            ca: { configMap: '', secret: '' },
            port: await freePort(),
            credentialsEndpoint: { enabled: false, port: await freePort() },
            ...extra,
          },
        };
      },
      async install(release, values, chart = 'example-app') {
        // Each release its own ServiceAccount, named after it (the token's subject names it).
        const file = ws.valuesFile(release, { ...values, serviceAccount: { create: true, name: release } });
        const r = await ws.run([
          'template',
          release,
          join(ws.helmDir, chart),
          '--namespace',
          namespace,
          '--values',
          file,
        ]);
        if (r.code !== 0) throw new Error(`helm template ${chart} failed: ${r.stderr}`);
        const docs = renderedDocs(r.stdout, release).map((d) => onThisNode(d.doc as Obj));
        for (const doc of docs) {
          const res = await kube.create(doc, namespace, { dryRun: false });
          if (res.status !== 201) throw new Error(`create ${String(doc.kind)}: ${verdict(res)}`);
        }
        return docs;
      },
      async pods(release) {
        const r = await kube.request(
          'GET',
          `/api/v1/namespaces/${namespace}/pods?labelSelector=${encodeURIComponent(`app.kubernetes.io/instance=${release}`)}`,
        );
        return ((r.body.items as Obj[] | undefined) ?? []).filter(
          (p) => !(p.metadata as Obj).deletionTimestamp,
        );
      },
      async waitPod(release, what, ok, timeoutMs = 120_000) {
        return until(`pod of ${release}: ${what}`, timeoutMs, async () =>
          (await stack.pods(release)).find(ok),
        );
      },
      json(pod, container) {
        return containerJson(node, namespace, podName(pod), container);
      },
      async waitLog(pod, container, what, ok, timeoutMs = 60_000) {
        return until(`${podName(pod)}/${container} log: ${what}`, timeoutMs, () => {
          const lines = stack.json(pod, container);
          return Promise.resolve(ok(lines) ? lines : undefined);
        });
      },
      async deletePod(pod) {
        await kubeRaw(kubeStack, 'DELETE', `/api/v1/namespaces/${namespace}/pods/${podName(pod)}`);
      },
      async signal(pod, container, sig) {
        const id = String(containerStatus(pod, container)?.containerID ?? '').replace(/^containerd:\/\//, '');
        if (!id) throw new Error(`${container} of ${podName(pod)} has no container ID yet`);
        const r = await nodeScript([
          'exec',
          'ctr',
          '-a',
          node.containerdSocket,
          '-n',
          'k8s.io',
          'tasks',
          'kill',
          '-s',
          sig,
          id,
        ]);
        if (r.code !== 0) throw new Error(`ctr tasks kill -s ${sig} ${id}: ${r.stderr}`);
      },
      async close() {
        await kubeRaw(kubeStack, 'DELETE', `/api/v1/namespaces/${namespace}`).catch(() => undefined);
        await decision.close();
        ws.dispose();
        rmSync(dir, { recursive: true, force: true });
      },
    };
    return stack;
  } catch (err) {
    await decision.close();
    helm?.dispose();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * The release's pod once Ready; fails as soon as its sidecar logs a failed or denied lease instead (with
 * that line's code and message), so a broken pod fails the test in seconds rather than at the timeout.
 */
export async function waitReadyOrRefused(s: PodStack, release: string, timeoutMs = 120_000): Promise<Obj> {
  return until(`pod of ${release}: Ready`, timeoutMs, async () => {
    const pods = await s.pods(release);
    const ready = pods.find(podReady);
    if (ready) return ready;
    for (const pod of pods) {
      const refused = s
        .json(pod, SIDECAR_CONTAINER)
        .find((l) => l.event === 'lease.failed' || l.event === 'lease.denied');
      if (refused)
        throw new Error(
          `${release}: the sidecar logged ${String(refused.event)} ${String(refused.code)}: ${String(refused.message ?? refused.msg)}`,
        );
    }
    return undefined;
  });
}

/** The log lines of one event. */
export function events(lines: Record<string, unknown>[], event: string): Record<string, unknown>[] {
  return lines.filter((l) => l.event === event);
}

/**
 * A denial in the pod: the decision server flipped to deny everything, SIGHUP to the release's sidecar so it
 * asks at once; resolves with the sidecar's log once it revoked the set.
 */
export async function denyInPod(s: PodStack, release: string, pod: Obj): Promise<Record<string, unknown>[]> {
  s.writePolicy({ rules: [] });
  const [current] = await s.pods(release);
  await s.signal(current ?? pod, SIDECAR_CONTAINER, 'SIGHUP');
  return s.waitLog(pod, SIDECAR_CONTAINER, 'lease.revoked', (l) => events(l, 'lease.revoked').length > 0);
}
