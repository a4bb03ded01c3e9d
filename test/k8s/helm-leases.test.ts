// The chart's `leases` list (issue 19): values.schema.json takes it, and helm renders the artifact-store
// example (helm/example-app/values-two-leases.yaml: its own prefix written, a shared bucket read, one pod,
// one sidecar) into a config file the sidecar's own parser accepts, with each lease's files, profile and
// per-lease _REF variables where the app container reads them.
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import { helmGate, helmWorkspace, renderedDocs, skipHelm, type HelmWorkspace } from './helm.ts';
import {
  CHART_DIR,
  EXAMPLE_CHART_DIR,
  isObject,
  listOf,
  mergeValues,
  podSpecOf,
  readText,
  readYaml,
  type Container,
  type Json,
  type JsonObject,
} from './support.ts';

const schema = JSON.parse(readText(join(CHART_DIR, 'values.schema.json'))) as JsonObject;
const validate = new Ajv({ allErrors: true, strict: true }).compile(schema);
const example = readYaml(join(EXAMPLE_CHART_DIR, 'values-two-leases.yaml')) as JsonObject;
const exampleSidecar = example.stsSidecar as JsonObject;
const gate = helmGate('helm-leases.test.ts');

function check(values: Json): string[] {
  return validate(values) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
}

function envOf(c: Container): Record<string, string> {
  return Object.fromEntries(listOf(c.env).map((e) => [String(e.name), String(e.value)]));
}

describe('values.schema.json: leases', () => {
  const defaults = readYaml(join(CHART_DIR, 'values.yaml'));
  const withLeases = (leases: Json) => mergeValues(structuredClone(defaults), { leases } as JsonObject);
  it('takes the example leases', () => {
    expect(check(mergeValues(structuredClone(defaults), exampleSidecar))).toEqual([]);
  });
  it('refuses a name that is not a DNS label, a lease without a bucket, and unknown keys', () => {
    expect(check(withLeases([{ name: 'Data_Sets', bucket: 'datasets' }]))).toEqual([
      expect.stringMatching(/^\/leases\/0\/name must match pattern/),
    ]);
    expect(check(withLeases([{ name: 'a' }]))).toEqual(["/leases/0 must have required property 'bucket'"]);
    expect(check(withLeases([{ name: 'a', bucket: 'datasets', output: '/x' }]))).toEqual([
      '/leases/0 must NOT have additional properties',
    ]);
  });
});

describe.skipIf(skipHelm)(`helm renders the two-lease artifact-store example${gate}`, () => {
  let ws: HelmWorkspace;
  beforeAll(async () => {
    ws = await helmWorkspace();
  });
  afterAll(() => ws?.dispose());
  /** `helm template` of example-app in namespace team-a with `values`. */
  const template = (name: string, values: JsonObject) =>
    ws.run([
      'template',
      `rel-${name}`,
      join(ws.helmDir, 'example-app'),
      '--namespace',
      'team-a',
      '-f',
      ws.valuesFile(name, values),
    ]);
  /** The rendered documents of a template that must succeed. */
  const rendered = async (name: string, values: JsonObject) => {
    const r = await template(name, values);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return renderedDocs(r.stdout, name).map((d) => d.doc);
  };

  it('helm lint --strict passes with the example values', async () => {
    const r = await ws.run([
      'lint',
      '--strict',
      join(ws.helmDir, 'example-app'),
      '-f',
      ws.valuesFile('lint', example),
    ]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it('one sidecar, a config file the sidecar accepts, each lease’s files and profile in the app container', async () => {
    const docs = await rendered('leases', example);
    const configMap = docs.find((d) => d.kind === 'ConfigMap') as JsonObject;
    const spec = podSpecOf(docs.find((d) => d.kind === 'Deployment') as JsonObject) as JsonObject;
    const sidecars = listOf(spec.initContainers).filter((c) => c.name === 'sts-sidecar');
    expect(sidecars).toHaveLength(1);
    const env = envOf(sidecars[0] as Container);
    expect(env).not.toHaveProperty('STS_SIDECAR_BUCKET');
    const json = String((configMap.data as JsonObject)['config.json']);
    const config = loadConfig(env, (file) => {
      expect(file).toBe(env.STS_SIDECAR_CONFIG_FILE);
      return json;
    });
    expect(config.leases.map((l) => [l.name, l.bucket, l.prefix, [...l.actions], l.roleArn])).toEqual([
      ['artifacts', 'artifacts', 'team-a/', ['list', 'read', 'write'], 'arn:aws:iam:::role/artifact-store'],
      ['datasets', 'shared-datasets', '', ['list', 'read'], 'arn:aws:iam:::role/dataset-reader'],
    ]);
    // The config file reaches the sidecar through its mount.
    const mount = listOf(sidecars[0]!.volumeMounts).find((m) => m.name === 'sts-sidecar-leases');
    expect(`${String(mount?.mountPath)}/config.json`).toBe(env.STS_SIDECAR_CONFIG_FILE);
    const volume = listOf(spec.volumes).find((v) => v.name === 'sts-sidecar-leases');
    expect(isObject(volume?.configMap) && volume.configMap.name).toBe(
      (configMap.metadata as JsonObject).name,
    );
    // The app container: the sidecar's profile file, and each lease's files under its _REF prefix.
    const app = listOf(spec.containers).find((c) => c.name !== 'sts-sidecar') as Container;
    const appEnv = envOf(app);
    expect(appEnv.AWS_CONFIG_FILE).toBe(`${config.outputDir}/aws-config`);
    expect(appEnv.ARTIFACTSTORE_S3_ACCESS_KEY_REF).toBe(`${config.leases[0]!.outputDir}/access-key`);
    expect(appEnv.DATASETS_S3_SESSION_TOKEN_REF).toBe(`${config.leases[1]!.outputDir}/session-token`);
  });

  it('Secret sink: one Secret per lease, the names the sidecar writes, one Role naming all of them', async () => {
    const docs = await rendered('secrets', { stsSidecar: { ...exampleSidecar, sink: { type: 'secret' } } });
    const configMap = docs.find((d) => d.kind === 'ConfigMap') as JsonObject;
    const spec = podSpecOf(docs.find((d) => d.kind === 'Deployment') as JsonObject) as JsonObject;
    const env = envOf(listOf(spec.initContainers).find((c) => c.name === 'sts-sidecar') as Container);
    const config = loadConfig(env, () => String((configMap.data as JsonObject)['config.json']));
    const names = config.leases.map((l) => l.secretName);
    expect(names).toEqual([`${config.secret!.name}-artifacts`, `${config.secret!.name}-datasets`]);
    const secrets = docs.filter((d) => d.kind === 'Secret').map((d) => (d.metadata as JsonObject).name);
    expect(secrets).toEqual(names);
    const role = docs.find((d) => d.kind === 'Role') as JsonObject;
    expect(listOf(role.rules)[0]?.resourceNames).toEqual(names);
  });

  it('refuses bucket and leases at once', async () => {
    const r = await template('both', { stsSidecar: { ...exampleSidecar, bucket: 'artifacts' } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('set bucket or leases, not both');
  });
});
