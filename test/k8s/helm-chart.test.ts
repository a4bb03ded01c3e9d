// The charts as helm itself sees them: `helm lint --strict` and `helm template` of both charts over every
// scenario of chart-scenarios.ts, the rendered pod specs checked against the sidecar's own config parser,
// and the values helm must refuse. Needs the helm binary of test/stack/helm.sh (mandatory in CI).
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import { VARIABLES } from '../../src/config/schema.ts';
import { CHART_SCENARIOS, REFUSED_VALUES, type ChartScenario } from './chart-scenarios.ts';
import { helmGate, helmWorkspace, renderedDocs, skipHelm, type HelmWorkspace } from './helm.ts';
import {
  containersOf,
  isObject,
  isSidecar,
  listOf,
  podSpecOf,
  stringList,
  type Container,
  type JsonObject,
  type SourcedDoc,
} from './support.ts';

const gate = helmGate('helm-chart.test.ts');

/** Env of a rendered container as the sidecar would see it (only literal values; no valueFrom here). */
function envObject(c: Container): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of listOf(c.env)) {
    if (typeof e.name !== 'string') continue;
    if (typeof e.value !== 'string') throw new Error(`${c.name}: env ${e.name} has no literal string value`);
    out[e.name] = e.value;
  }
  return out;
}

function probePort(c: Container, kind: string): unknown {
  const p = c[kind];
  return isObject(p) && isObject(p.httpGet) ? p.httpGet.port : undefined;
}

describe.skipIf(skipHelm)(`helm lint and helm template of both charts${gate}`, () => {
  let ws: HelmWorkspace;
  beforeAll(async () => {
    ws = await helmWorkspace();
  });
  afterAll(() => ws?.dispose());

  const render = async (s: ChartScenario): Promise<SourcedDoc[]> => {
    const values = ws.valuesFile(s.name, s.values);
    const r = await ws.run([
      'template',
      `rel-${s.name}`,
      join(ws.helmDir, s.chart),
      '--namespace',
      'team-a',
      '-f',
      values,
    ]);
    expect(r.stderr, 'helm template stderr').toBe('');
    expect(r.code).toBe(0);
    return renderedDocs(r.stdout, s.name);
  };

  for (const s of CHART_SCENARIOS) {
    describe(`${s.chart} / ${s.name}`, () => {
      it('helm lint --strict passes (chart metadata, schema, templates)', async () => {
        const r = await ws.run([
          'lint',
          '--strict',
          join(ws.helmDir, s.chart),
          '-f',
          ws.valuesFile(s.name, s.values),
        ]);
        expect(`${r.stdout}\n${r.stderr}`, 'lint output').toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
        expect(r.code).toBe(0);
      });

      if (s.chart === 'sts-sidecar') {
        it('renders no resources by itself (named templates only, as Chart.yaml says)', async () => {
          expect(await render(s)).toEqual([]);
        });
        return;
      }

      it(`renders a Deployment whose sidecar runs in ${s.mode} mode with a config the sidecar accepts`, async () => {
        const docs = await render(s);
        const kinds = docs.map((d) => String(d.doc.kind)).sort();
        const sv = (s.values.stsSidecar ?? {}) as JsonObject;
        const awsConfig = isObject(sv.app) && isObject(sv.app.awsConfig) && sv.app.awsConfig.enabled === true;
        const saCreated = !(isObject(s.values.serviceAccount) && s.values.serviceAccount.create === false);
        const secretSink = isObject(sv.sink) && sv.sink.type === 'secret';
        expect(kinds).toEqual(
          [
            'Deployment',
            ...(awsConfig ? ['ConfigMap'] : []),
            ...(saCreated ? ['ServiceAccount'] : []),
            ...(secretSink ? ['Secret', 'Role', 'RoleBinding'] : []),
          ].sort(),
        );
        const deploy = docs.find((d) => d.doc.kind === 'Deployment')?.doc as JsonObject;
        const spec = podSpecOf(deploy) as JsonObject;
        const inits = containersOf(spec, 'initContainers').filter(isSidecar);
        const mains = containersOf(spec, 'containers').filter(isSidecar);
        const running = s.mode === 'native' ? inits : mains;
        expect(inits).toHaveLength(1);
        expect(mains).toHaveLength(s.mode === 'native' ? 0 : 1);
        const run = running[0] as Container;
        expect(stringList(run.args)).toEqual(['run']);
        if (s.mode === 'native') expect(run.restartPolicy).toBe('Always');
        else {
          const once = inits[0] as Container;
          expect(stringList(once.args)).toEqual(['once']);
          expect(once.restartPolicy).toBeUndefined();
          expect(envObject(once).STS_SIDECAR_LISTEN).toBe('off');
          expect(() => loadConfig(envObject(once))).not.toThrow();
        }
        // The sidecar's own parser accepts the rendered env: every name known, every value valid.
        const env = envObject(run);
        for (const name of Object.keys(env).filter((n) => n.startsWith('STS_SIDECAR_')))
          expect(Object.hasOwn(VARIABLES, name), name).toBe(true);
        const config = loadConfig(env);
        const port = config.listen?.port;
        expect(port).toBeGreaterThan(0);
        // Probes on the paths the sidecar serves: startup and readiness on /readyz, liveness on /healthz.
        const probePath = (kind: string): unknown => {
          const p = run[kind];
          return isObject(p) && isObject(p.httpGet) ? p.httpGet.path : undefined;
        };
        expect([probePath('startupProbe'), probePath('livenessProbe'), probePath('readinessProbe')]).toEqual([
          '/readyz',
          '/healthz',
          '/readyz',
        ]);
        if (s.mode === 'legacy') {
          const once = inits[0] as Container;
          for (const kind of ['startupProbe', 'livenessProbe', 'readinessProbe'])
            expect(once[kind], kind).toBeUndefined();
        }
        for (const kind of ['startupProbe', 'livenessProbe', 'readinessProbe'])
          expect(probePort(run, kind), kind).toBe(port);
        expect(listOf(run.ports).map((p) => p.containerPort)).toEqual([port]);
        if (secretSink) {
          // The sink writes the Secret the chart renders, with RBAC for exactly that Secret, as the pod's SA.
          const secret = config.secret;
          if (!secret) throw new Error('sink secret without secret config');
          const byKind = (kind: string) => docs.find((d) => d.doc.kind === kind)?.doc as JsonObject;
          expect((byKind('Secret').metadata as JsonObject).name).toBe(secret.name);
          expect(byKind('Role').rules).toEqual([
            {
              apiGroups: [''],
              resources: ['secrets'],
              resourceNames: [secret.name],
              verbs: ['get', 'update'],
            },
          ]);
          const binding = byKind('RoleBinding');
          expect(listOf(binding.subjects).map((x) => [x.kind, x.name, x.namespace])).toEqual([
            ['ServiceAccount', spec.serviceAccountName, 'team-a'],
          ]);
          expect((binding.roleRef as JsonObject).name).toBe((byKind('Role').metadata as JsonObject).name);
          const kubeMount = listOf(run.volumeMounts).find((m) => m.name === 'sts-sidecar-kube-api');
          expect(`${String(kubeMount?.mountPath)}/token`).toBe(secret.tokenFile);
          expect(`${String(kubeMount?.mountPath)}/ca.crt`).toBe(secret.caFile);
        } else expect(config.sink).toBe('directory');
        // Credentials are written where the app containers read them.
        const app = containersOf(spec, 'containers').find((c) => !isSidecar(c)) as Container;
        const appMount = listOf(app.volumeMounts).find((m) => m.name === 'sts-sidecar-credentials');
        expect(appMount?.mountPath).toBe(config.outputDir);
        expect(appMount?.readOnly).toBe(true);
      });
    });
  }

  describe('helm catches broken templates (what the old static structure checks looked for)', () => {
    const cases: Array<[string, string, RegExp]> = [
      [
        'an unclosed if',
        '{{- define "sts-sidecar.broken" -}}{{ if .Values.tenant }}x{{- end -}}',
        /unexpected EOF/,
      ],
      [
        'unbalanced parentheses',
        '{{- define "sts-sidecar.broken" -}}{{ (include "x" . }}{{- end -}}',
        /unclosed left paren|unexpected/,
      ],
      [
        'an include of an undefined template',
        '{{ include "sts-sidecar.nope" . }}',
        /no template "sts-sidecar.nope"/,
      ],
    ];
    for (const [what, text, message] of cases) {
      it(`helm lint fails on ${what}`, async () => {
        const file = join(ws.helmDir, 'example-app', 'templates', 'broken.yaml');
        writeFileSync(file, text);
        try {
          const r = await ws.run(['lint', '--strict', join(ws.helmDir, 'example-app')]);
          expect(r.code).not.toBe(0);
          expect(`${r.stdout}\n${r.stderr}`).toMatch(message);
        } finally {
          rmSync(file);
        }
      });
    }
  });

  describe('values helm refuses', () => {
    for (const bad of REFUSED_VALUES) {
      it(`refuses ${bad.name}`, async () => {
        const r = await ws.run([
          'template',
          'rel',
          join(ws.helmDir, 'example-app'),
          '-f',
          ws.valuesFile(`bad-${bad.name}`, bad.values),
        ]);
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(bad.message);
      });
    }
  });
});
