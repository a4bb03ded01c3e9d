// Every manifest a user gets from us, judged by a real kube-apiserver (test/stack/kube-apiserver.sh):
// each example file, each README manifest and each chart scenario rendered by helm goes through a
// server-side dry run and a real create (fieldValidation=Strict) in a namespace of its own. Negative cases
// show the API server refuses the mistakes a platform team would hit first. Nothing runs: there is no kubelet.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHART_SCENARIOS } from './chart-scenarios.ts';
import { helmSkipReason, helmWorkspace, renderedDocs, skipHelm, type HelmWorkspace } from './helm.ts';
import {
  CHART_DIR,
  EXAMPLES_DIR,
  exampleManifests,
  exampleYamlFiles,
  markdownManifests,
  parseDocs,
  readText,
  type JsonObject,
  type SourcedDoc,
} from './support.ts';
import {
  KubeAdmin,
  kubeGate,
  kubeSkipReason,
  readStack,
  skipKube,
  uniqueNamespace,
  verdict,
} from '../stack/kube.ts';

const gate = kubeGate('admission.test.ts');

/** A manifest placed in the test's namespace (the examples name team-a; each file gets a namespace of its own). */
function inNamespace(doc: JsonObject, namespace: string): JsonObject {
  const meta = (doc.metadata ?? {}) as JsonObject;
  return meta.namespace === undefined ? doc : { ...doc, metadata: { ...meta, namespace } };
}

async function admit(admin: KubeAdmin, docs: readonly SourcedDoc[], namespace: string): Promise<void> {
  for (const { source, doc: original } of docs) {
    const doc = inNamespace(original, namespace);
    const dry = await admin.create(doc, namespace, { dryRun: true });
    expect(dry.status, `${source} dry run: ${verdict(dry)}`).toBe(201);
    const real = await admin.create(doc, namespace, { dryRun: false });
    expect(real.status, `${source} create: ${verdict(real)}`).toBe(201);
    // What the API server stored is what we sent (defaulting adds, never drops or renames).
    const meta = real.body.metadata as JsonObject;
    expect(meta.name).toBe((doc.metadata as JsonObject).name);
    expect(meta.uid).toEqual(expect.any(String));
  }
}

describe.skipIf(skipKube)(`a real kube-apiserver admits every manifest${gate}`, () => {
  let admin: KubeAdmin;
  beforeAll(() => {
    if (kubeSkipReason) throw new Error(`STSTEST_REQUIRE_KUBE=1 but ${kubeSkipReason}`);
    admin = new KubeAdmin(readStack());
  });

  it('finds the manifests to admit', () => {
    const names = exampleYamlFiles().map((f) => f.slice(EXAMPLES_DIR.length + 1));
    expect(names).toEqual(
      expect.arrayContaining([
        'artifact-store-deployment.yaml',
        'aws-sdk-credential-process.yaml',
        'once-job.yaml',
      ]),
    );
    const kinds = exampleManifests().map((d) => `${String(d.doc.apiVersion)}/${String(d.doc.kind)}`);
    expect(kinds).toEqual(
      expect.arrayContaining(['v1/ServiceAccount', 'apps/v1/Deployment', 'batch/v1/Job', 'v1/ConfigMap']),
    );
    expect(markdownManifests(join(CHART_DIR, 'README.md')).length).toBeGreaterThan(0);
    expect(markdownManifests(join(EXAMPLES_DIR, 'README.md')).length).toBeGreaterThan(0);
  });

  for (const file of exampleYamlFiles()) {
    const name = file.slice(EXAMPLES_DIR.length + 1);
    it(`examples/${name}: dry run and create`, async () => {
      const ns = uniqueNamespace(`ex-${name.replace(/\.ya?ml$/, '')}`);
      await admin.createNamespace(ns);
      await admit(admin, parseDocs(readText(file), `examples/${name}`), ns);
    });
  }

  for (const [label, readme] of [
    ['helm/sts-sidecar/README.md', join(CHART_DIR, 'README.md')],
    ['examples/README.md', join(EXAMPLES_DIR, 'README.md')],
  ] as const) {
    it(`${label}: every manifest block, dry run and create`, async () => {
      const docs = markdownManifests(readme);
      expect(docs.length).toBeGreaterThan(0);
      for (const [i, d] of docs.entries()) {
        const ns = uniqueNamespace(`readme-${i}`);
        await admin.createNamespace(ns);
        // A bare Pod needs its ServiceAccount to exist (ServiceAccount admission); the README assumes the
        // example's ServiceAccount, so it is created first, as in a cluster where that example was applied.
        const sa =
          d.doc.kind === 'Pod' ? (d.doc.spec as JsonObject | undefined)?.serviceAccountName : undefined;
        if (typeof sa === 'string') {
          const r = await admin.create(
            { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa } },
            ns,
            {
              dryRun: false,
            },
          );
          expect(r.status, verdict(r)).toBe(201);
        }
        await admit(admin, [d], ns);
      }
    });
  }

  describe.skipIf(skipHelm)(
    `every chart scenario rendered by helm${helmSkipReason ? ` (helm unavailable: ${helmSkipReason})` : ''}`,
    () => {
      let ws: HelmWorkspace;
      beforeAll(async () => {
        ws = await helmWorkspace();
      });
      afterAll(() => ws?.dispose());

      for (const s of CHART_SCENARIOS.filter((x) => x.chart === 'example-app')) {
        it(`${s.name}: dry run and create`, async () => {
          const ns = uniqueNamespace(`chart-${s.name}`);
          await admin.createNamespace(ns);
          const r = await ws.run([
            'template',
            'rel',
            join(ws.helmDir, s.chart),
            '--namespace',
            ns,
            '-f',
            ws.valuesFile(s.name, s.values),
          ]);
          expect(r.code, r.stderr).toBe(0);
          const docs = renderedDocs(r.stdout, s.name);
          expect(docs.length).toBeGreaterThan(0);
          await admit(admin, docs, ns);
        });
      }
    },
  );
});

type Mutable = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The example Deployment, deep-copied, for one mistake at a time. */
function exampleDeployment(): Mutable {
  const d = exampleManifests().find(
    (m) => m.source.includes('artifact-store-deployment.yaml') && m.doc.kind === 'Deployment',
  );
  if (!d) throw new Error('no Deployment in examples/artifact-store-deployment.yaml');
  const doc = structuredClone(d.doc) as Mutable;
  delete doc.metadata.namespace;
  return doc;
}

describe.skipIf(skipKube)(`the API server refuses broken manifests${gate}`, () => {
  let admin: KubeAdmin;
  let ns: string;
  beforeAll(async () => {
    if (kubeSkipReason) throw new Error(`STSTEST_REQUIRE_KUBE=1 but ${kubeSkipReason}`);
    admin = new KubeAdmin(readStack());
    ns = uniqueNamespace('refused');
    await admin.createNamespace(ns);
  });

  it('admits the unbroken baseline (so each refusal below is the mistake, not the base)', async () => {
    const r = await admin.create(exampleDeployment(), ns, { dryRun: true });
    expect(r.status, verdict(r)).toBe(201);
  });

  const pod = (d: Mutable): Mutable => d.spec.template.spec;
  const cases: Array<[string, (d: Mutable) => Mutable, RegExp]> = [
    [
      'a native sidecar without restartPolicy: Always (its probes are then forbidden on an init container)',
      (d) => {
        delete pod(d).initContainers[0].restartPolicy;
        return d;
      },
      /initContainers\[0\]\.(startupProbe|livenessProbe|readinessProbe).*(Forbidden|may not be set)/,
    ],
    [
      'an init container restartPolicy that does not exist',
      (d) => {
        pod(d).initContainers[0].restartPolicy = 'Sometimes';
        return d;
      },
      /initContainers\[0\]\.restartPolicy: Unsupported value/,
    ],
    [
      'a probe on a malformed port name',
      (d) => {
        pod(d).initContainers[0].startupProbe.httpGet.port = 'sts_http';
        return d;
      },
      /startupProbe\.httpGet\.port/,
    ],
    [
      'a projected token below the 10-minute minimum',
      (d) => {
        pod(d).volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds = 300;
        return d;
      },
      /serviceAccountToken\.expirationSeconds/,
    ],
    [
      'a projected token without a path',
      (d) => {
        delete pod(d).volumes[0].projected.sources[0].serviceAccountToken.path;
        return d;
      },
      /projected\.path: Required value/,
    ],
    [
      'a mount of a volume the pod does not have',
      (d) => {
        pod(d).containers[0].volumeMounts[0].name = 'sts-sidecar-credentialz';
        return d;
      },
      /volumeMounts\[0\]\.name.*Not found/,
    ],
    [
      'a misspelt field (strict field validation)',
      (d) => {
        pod(d).initContainers[0].restartPolicey = 'Always';
        return d;
      },
      /unknown field.*restartPolicey/,
    ],
    [
      'two containers with one name',
      (d) => {
        pod(d).containers[0].name = pod(d).initContainers[0].name;
        return d;
      },
      /Duplicate value/,
    ],
  ];
  for (const [what, mutate, message] of cases) {
    it(`refuses ${what}`, async () => {
      const r = await admin.create(mutate(exampleDeployment()), ns, { dryRun: true });
      expect(r.status, verdict(r)).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      expect(String(r.body.message)).toMatch(message);
    });
  }

  it('refuses a Secret key the sink could not write and a Role without verbs', async () => {
    const secret = await admin.create(
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data: { 'ACCESS KEY': 'eA==' } },
      ns,
      { dryRun: true },
    );
    expect(secret.status, verdict(secret)).toBe(422);
    expect(String(secret.body.message)).toMatch(/data\[ACCESS KEY\]/);
    const role = await admin.create(
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: 'r' },
        rules: [{ apiGroups: [''], resources: ['secrets'], resourceNames: ['s'] }],
      },
      ns,
      { dryRun: true },
    );
    expect(role.status, verdict(role)).toBe(422);
    expect(String(role.body.message)).toMatch(/verbs/);
  });
});
