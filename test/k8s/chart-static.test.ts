// Static checks of the Helm charts that helm itself does not make: Chart.yaml metadata and the
// dependency alias, include/define pairs and .Values paths in every branch (helm only renders the
// branches a scenario takes), the README's coverage. Template syntax, apiVersion and semver are helm's
// job now (test/k8s/helm-chart.test.ts: helm lint --strict and helm template).
import { basename, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CHART_DIR,
  EXAMPLE_CHART_DIR,
  HELM_DIR,
  defineBody,
  definedTemplates,
  filesUnder,
  hasPath,
  includedTemplates,
  isObject,
  leafPaths,
  mergeValues,
  readText,
  readYaml,
  stubYaml,
  templateFiles,
  valuesPaths,
  type Json,
  type JsonObject,
} from './support.ts';

const chartFiles = filesUnder(HELM_DIR, (n) => n === 'Chart.yaml');

function chart(dir: string): JsonObject {
  const c = readYaml(join(dir, 'Chart.yaml'));
  if (!isObject(c)) throw new Error(`${dir}/Chart.yaml is not a mapping`);
  return c;
}

const stsValues = readYaml(join(CHART_DIR, 'values.yaml'));
const appValuesRaw = readYaml(join(EXAMPLE_CHART_DIR, 'values.yaml'));
/** example-app values as Helm coalesces them: the dependency's defaults under its alias. */
const appValues = mergeValues(appValuesRaw, {
  stsSidecar: mergeValues(stsValues, isObject(appValuesRaw) ? (appValuesRaw.stsSidecar ?? {}) : {}),
});

const allTemplates = [...templateFiles(CHART_DIR), ...templateFiles(EXAMPLE_CHART_DIR)];

/** Every `.Values.a.b` a chart's templates read that `values` lacks, as "template: .Values.a.b". */
function valuesPathsMissing(chartDir: string, values: Json): string[] {
  return templateFiles(chartDir).flatMap((f) =>
    valuesPaths(readText(f))
      .filter((p) => !hasPath(values, p))
      .map((p) => `${relative(HELM_DIR, f)}: .Values.${p.join('.')}`),
  );
}

describe('Chart.yaml files', () => {
  it('finds both charts', () => {
    expect(chartFiles.map((f) => relative(HELM_DIR, f)).sort()).toEqual([
      'example-app/Chart.yaml',
      'sts-sidecar/Chart.yaml',
    ]);
  });

  for (const file of chartFiles) {
    it(`${relative(HELM_DIR, file)}: name = directory, application type`, () => {
      const c = readYaml(file);
      if (!isObject(c)) throw new Error('not a mapping');
      expect(c.name).toBe(basename(join(file, '..')));
      expect(c.type).toBe('application');
      expect(typeof c.appVersion).toBe('string');
      expect(typeof c.description).toBe('string');
    });
  }

  it('example-app depends on ../sts-sidecar by its name and version, under the alias its templates use', () => {
    const deps = chart(EXAMPLE_CHART_DIR).dependencies;
    const dep = Array.isArray(deps) ? deps.find((d) => isObject(d) && d.name === 'sts-sidecar') : undefined;
    if (!isObject(dep)) throw new Error('no sts-sidecar dependency');
    const sts = chart(CHART_DIR);
    expect(dep.repository).toBe('file://../sts-sidecar');
    expect(dep.version).toBe(sts.version);
    expect(dep.alias).toBe('stsSidecar');
    expect(isObject(appValuesRaw) && isObject(appValuesRaw.stsSidecar)).toBe(true);
    // The alias must be a plain identifier so templates can write .Values.stsSidecar.
    expect(String(dep.alias)).toMatch(/^[A-Za-z_][A-Za-z0-9_]*$/);
  });

  it('the image tag defaults to the appVersion', () => {
    const img = isObject(stsValues) && isObject(stsValues.image) ? stsValues.image : {};
    expect(img.tag).toBe(chart(CHART_DIR).appVersion);
  });
});

describe('templates', () => {
  it('exist: helpers, NOTES and the example Deployment', () => {
    const names = allTemplates.map((f) => relative(HELM_DIR, f));
    expect(names).toEqual(
      expect.arrayContaining([
        'sts-sidecar/templates/_helpers.tpl',
        'sts-sidecar/templates/NOTES.txt',
        'example-app/templates/deployment.yaml',
        'example-app/templates/NOTES.txt',
      ]),
    );
  });

  const defined = new Map<string, string>();
  for (const file of allTemplates)
    for (const name of definedTemplates(readText(file))) defined.set(name, file);

  it('sts-sidecar defines the includable templates the README promises', () => {
    for (const name of [
      'sts-sidecar.container',
      'sts-sidecar.onceContainer',
      'sts-sidecar.initContainers',
      'sts-sidecar.sidecarContainers',
      'sts-sidecar.volumes',
      'sts-sidecar.appEnv',
      'sts-sidecar.appVolumeMounts',
      'sts-sidecar.podSecurityContext',
      'sts-sidecar.awsConfigMap',
      'sts-sidecar.notes',
    ]) {
      expect(defined.get(name), name).toBe(join(CHART_DIR, 'templates/_helpers.tpl'));
      expect(readText(join(CHART_DIR, 'README.md')), `README documents ${name}`).toContain(name);
    }
  });

  it('templates define no name twice (Helm would silently keep one)', () => {
    const all = allTemplates.flatMap((f) => definedTemplates(readText(f)));
    expect(all.filter((n, i) => all.indexOf(n) !== i)).toEqual([]);
  });

  it('every include/template refers to a defined template', () => {
    const used = allTemplates.flatMap((f) =>
      includedTemplates(readText(f)).map((n) => [relative(HELM_DIR, f), n] as const),
    );
    expect(
      used.filter(([, n]) => n.startsWith('sts-sidecar.') && !n.endsWith('.tpl')).length,
    ).toBeGreaterThan(5);
    expect(used.filter(([, n]) => !defined.has(n))).toEqual([]);
  });

  it('example-app uses the sts-sidecar templates (and only through the dependency)', () => {
    const deploy = readText(join(EXAMPLE_CHART_DIR, 'templates/deployment.yaml'));
    for (const name of [
      'sts-sidecar.initContainers',
      'sts-sidecar.sidecarContainers',
      'sts-sidecar.volumes',
      'sts-sidecar.appEnv',
      'sts-sidecar.appVolumeMounts',
      'sts-sidecar.podSecurityContext',
    ]) {
      expect(includedTemplates(deploy)).toContain(name);
    }
    expect(deploy).toContain('dict "Values" .Values.stsSidecar');
    expect(
      filesUnder(join(EXAMPLE_CHART_DIR, 'templates'), (n) => n.endsWith('.tpl'))
        .flatMap((f) => definedTemplates(readText(f)))
        .filter((n) => n.startsWith('sts-sidecar.')),
    ).toEqual([]);
  });

  it('every .Values path in sts-sidecar templates exists in its values.yaml', () => {
    expect(valuesPathsMissing(CHART_DIR, stsValues)).toEqual([]);
  });

  it('every .Values path in example-app templates exists in its values (with the dependency defaults)', () => {
    expect(valuesPathsMissing(EXAMPLE_CHART_DIR, appValues)).toEqual([]);
  });

  it('every sts-sidecar value is used by a template (no dead knobs)', () => {
    const used = templateFiles(CHART_DIR).flatMap((f) => valuesPaths(readText(f)));
    const unused = leafPaths(stsValues).filter((leaf) => !used.some((p) => p.every((k, i) => leaf[i] === k)));
    expect(unused.map((p) => p.join('.'))).toEqual([]);
  });

  it('the README values table documents every value', () => {
    // Maps documented as a whole (their keys are Kubernetes fields).
    const asWhole = ['resources', 'probes.startup', 'probes.liveness', 'probes.readiness'];
    const readme = readText(join(CHART_DIR, 'README.md'));
    const undocumented = leafPaths(stsValues)
      .map((p) => p.join('.'))
      .filter((p) => {
        const doc = asWhole.find((w) => p === w || p.startsWith(`${w}.`)) ?? p;
        return !readme.includes(`\`${doc}\``);
      });
    expect(undocumented).toEqual([]);
  });

  it('the path check catches a typo', () => {
    expect(valuesPaths('{{ .Values.credentials.mountPth }}')).toEqual([['credentials', 'mountPth']]);
    expect(hasPath(stsValues, ['credentials', 'mountPth'])).toBe(false);
    expect(hasPath(stsValues as Json, ['credentials', 'mountPath'])).toBe(true);
  });

  it('signal notifications: shared PID-file emptyDir in both containers, shareProcessNamespace, same UID', () => {
    const helpers = readText(join(CHART_DIR, 'templates/_helpers.tpl'));
    const signalBlock = (name: string) => {
      const body = defineBody(helpers, name);
      const m = /\{\{-? if \.Values\.notify\.signal -?\}\}([\s\S]*?)\{\{-? end -?\}\}/.exec(body);
      expect(m, `${name} renders something when notify.signal is set`).not.toBeNull();
      return stubYaml(m![1]!.replace(/^\n/, ''));
    };
    expect(signalBlock('sts-sidecar.volumes')).toEqual([
      { name: 'sts-sidecar-notify', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
    ]);
    expect(signalBlock('sts-sidecar.sidecarVolumeMounts')).toEqual([
      { name: 'sts-sidecar-notify', mountPath: 'TPL', readOnly: true },
    ]);
    expect(signalBlock('sts-sidecar.appVolumeMounts')).toEqual([
      { name: 'sts-sidecar-notify', mountPath: 'TPL' },
    ]);
    for (const name of ['sts-sidecar.sidecarVolumeMounts', 'sts-sidecar.appVolumeMounts'])
      expect(defineBody(helpers, name)).toContain('mountPath: {{ include "sts-sidecar.notifyDir" . }}');
    expect(defineBody(helpers, 'sts-sidecar.notifyDir').trim()).toBe('{{ dir .Values.notify.pidFile }}');
    expect(signalBlock('sts-sidecar.podOptions')).toEqual({ shareProcessNamespace: true });
    const deploy = readText(join(EXAMPLE_CHART_DIR, 'templates/deployment.yaml'));
    expect(includedTemplates(deploy)).toContain('sts-sidecar.podOptions');
    expect(deploy).toMatch(
      /runAsUser: \{\{ if \.Values\.stsSidecar\.notify\.signal \}\}\{\{ int \.Values\.stsSidecar\.securityContext\.runAsUser \}\}/,
    );
    expect(readText(join(CHART_DIR, 'README.md'))).toContain('sts-sidecar.podOptions');
  });

  it('NOTES warn about the risky values', () => {
    const helpers = readText(join(CHART_DIR, 'templates/_helpers.tpl'));
    expect(helpers).toMatch(/if not \.Values\.audience/);
    expect(helpers).toMatch(/if gt \(int \.Values\.ttlSeconds\) 3600/);
    expect(helpers).toMatch(/if has "delete" \.Values\.actions/);
    expect(helpers).toMatch(/\/readyz/);
    expect(readText(join(CHART_DIR, 'templates/NOTES.txt'))).toContain('include "sts-sidecar.notes"');
  });
});
