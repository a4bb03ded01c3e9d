// helm/sts-sidecar/values.schema.json: the defaults and the example-app values pass; wrong types,
// unknown keys, bad enums and out-of-range numbers fail; enums and ranges agree with the sidecar's
// own config schema (src/config/schema.ts).
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { ACTION_GROUPS, BACKENDS, VARIABLES } from '../../src/config/schema.ts';
import {
  CHART_DIR,
  EXAMPLE_CHART_DIR,
  isObject,
  mergeValues,
  readText,
  readYaml,
  type Json,
  type JsonObject,
} from './support.ts';

const schema = JSON.parse(readText(join(CHART_DIR, 'values.schema.json'))) as JsonObject;
const defaults = readYaml(join(CHART_DIR, 'values.yaml'));
const ajv = new Ajv({ allErrors: true, strict: true });
const validate = ajv.compile(schema);

function check(values: Json): string[] {
  return validate(values) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
}

function withOverride(override: JsonObject): Json {
  return mergeValues(structuredClone(defaults), override);
}

function props(): JsonObject {
  const p = schema.properties;
  if (!isObject(p)) throw new Error('schema has no properties');
  return p;
}

describe('values.schema.json', () => {
  it('is draft-07 and closed (additionalProperties: false) at every object level', () => {
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    const open: string[] = [];
    const walk = (node: Json, path: string): void => {
      if (Array.isArray(node)) node.forEach((n, i) => walk(n, `${path}/${i}`));
      if (!isObject(node)) return;
      // global is the one open map: Helm adds it to every subchart's values.
      if (node.type === 'object' && node.additionalProperties !== false && path !== '/properties/global')
        open.push(path);
      for (const [k, v] of Object.entries(node)) walk(v, `${path}/${k}`);
    };
    walk(schema, '');
    expect(open).toEqual([]);
  });

  it('uses no regex look-arounds (Helm validates with Go RE2)', () => {
    const patterns = JSON.stringify(schema).match(/"pattern":"(?:[^"\\]|\\.)*"/g) ?? [];
    expect(patterns.length).toBeGreaterThan(5);
    for (const p of patterns) expect(p).not.toMatch(/\(\?[=!<]/);
  });

  it('accepts the chart defaults', () => {
    expect(check(defaults)).toEqual([]);
  });

  it('accepts the example-app values (merged over the defaults, with global as Helm adds it)', () => {
    const parent = readYaml(join(EXAMPLE_CHART_DIR, 'values.yaml'));
    if (!isObject(parent) || !isObject(parent.stsSidecar))
      throw new Error('example-app has no stsSidecar values');
    expect(check(mergeValues(withOverride(parent.stsSidecar), { global: {} }))).toEqual([]);
  });

  const bad: Array<[string, JsonObject, RegExp]> = [
    ['wrong type: ttlSeconds as a string', { ttlSeconds: '3600' }, /ttlSeconds must be integer/],
    ['wrong type: actions as a comma string', { actions: 'read,write' }, /actions must be array/],
    ['unknown top-level key (typo)', { tennant: 'team-a' }, /must NOT have additional properties/],
    [
      'unknown nested key',
      { credentials: { mountpath: '/x' } },
      /credentials must NOT have additional properties/,
    ],
    ['bad enum: mode', { mode: 'sidecar' }, /mode must be equal to one of the allowed values/],
    [
      'bad enum: action',
      { actions: ['read', 'admin'] },
      /actions\/1 must be equal to one of the allowed values/,
    ],
    ['bad enum: backend', { backend: 'ceph' }, /backend must be equal to one of the allowed values/],
    ['ttl out of range (low)', { ttlSeconds: 30 }, /ttlSeconds must be >= 60/],
    ['ttl out of range (high)', { ttlSeconds: 86400 }, /ttlSeconds must be <= 43200/],
    [
      'token expiration below the Kubernetes minimum',
      { token: { expirationSeconds: 300 } },
      /expirationSeconds must be >= 600/,
    ],
    ['root uid', { securityContext: { runAsUser: 0 } }, /runAsUser must be >= 1/],
    ['bucket name not S3-valid', { bucket: 'Artifacts_Bucket' }, /bucket must match pattern/],
    ['prefix starting with /', { prefix: '/team-a/' }, /prefix must match pattern/],
    ['flexAuthUrl not http(s)', { flexAuthUrl: 'flex-auth.auth.svc' }, /flexAuthUrl must match pattern/],
    [
      'extraEnv entry with an unknown field',
      { extraEnv: [{ name: 'X', vaule: '1' }] },
      /extraEnv\/0 must NOT have additional properties/,
    ],
    ['duplicate actions', { actions: ['read', 'read'] }, /actions must NOT have duplicate items/],
    [
      'a notify URL with user:password (fetch would quote it in errors)',
      { notify: { url: 'https://user:pw@hooks.example/x' } },
      /notify\/url must match pattern/,
    ],
    [
      'a PID file directly under / (its directory becomes a shared emptyDir)',
      { notify: { signal: 'SIGHUP', pidFile: '/app.pid' } },
      /notify\/pidFile must match pattern/,
    ],
  ];
  for (const [what, override, message] of bad) {
    it(`rejects ${what}`, () => {
      const errors = check(withOverride(override));
      expect(errors.join('\n')).toMatch(message);
    });
  }
});

describe('values.schema.json agrees with src/config/schema.ts', () => {
  it('action and backend enums are the sidecar lists', () => {
    const p = props();
    const actions = p.actions as { items: { enum: string[] } };
    expect([...actions.items.enum].sort()).toEqual([...ACTION_GROUPS].sort());
    expect((p.backend as { enum: string[] }).enum).toEqual(['', ...BACKENDS]);
  });

  it('every logLevel the chart allows is one the sidecar accepts', () => {
    for (const level of (props().logLevel as { enum: string[] }).enum) {
      expect(VARIABLES.STS_SIDECAR_LOG_LEVEL.schema.safeParse(level).success, level).toBe(true);
    }
  });

  const ranges: Array<[string, keyof typeof VARIABLES]> = [
    ['ttlSeconds', 'STS_SIDECAR_TTL_SECONDS'],
    ['readyMarginSeconds', 'STS_SIDECAR_READY_MARGIN_SECONDS'],
  ];
  for (const [key, variable] of ranges) {
    it(`${key} bounds equal ${variable}'s`, () => {
      const { minimum, maximum } = props()[key] as { minimum: number; maximum: number };
      const zod = VARIABLES[variable].schema;
      expect(zod.safeParse(String(minimum)).success).toBe(true);
      expect(zod.safeParse(String(maximum)).success).toBe(true);
      if (minimum > 0) expect(zod.safeParse(String(minimum - 1)).success).toBe(false);
      expect(zod.safeParse(String(maximum + 1)).success).toBe(false);
    });
  }

  it('string patterns accept what the sidecar accepts and reject what it rejects', () => {
    const samples: Array<[string, keyof typeof VARIABLES, string]> = [
      ['tenant', 'STS_SIDECAR_TENANT', 'team-a'],
      ['tenant', 'STS_SIDECAR_TENANT', '-team'],
      ['bucket', 'STS_SIDECAR_BUCKET', 'artifacts'],
      ['bucket', 'STS_SIDECAR_BUCKET', 'ab'],
      ['bucket', 'STS_SIDECAR_BUCKET', 'Artifacts'],
      ['prefix', 'STS_SIDECAR_PREFIX', 'team-a/'],
      ['prefix', 'STS_SIDECAR_PREFIX', '/team-a/'],
      ['prefix', 'STS_SIDECAR_PREFIX', 'team a/'],
      ['prefix', 'STS_SIDECAR_PREFIX', 'team-*'],
      ['region', 'STS_SIDECAR_STS_REGION', 'us-east-1'],
      ['region', 'STS_SIDECAR_STS_REGION', 'US_EAST'],
      ['roleArn', 'STS_SIDECAR_ROLE_ARN', 'arn:aws:iam:::role/artifact-store'],
      ['roleArn', 'STS_SIDECAR_ROLE_ARN', 'role/artifact-store'],
      ['sessionName', 'STS_SIDECAR_SESSION_NAME', 'artifact-store@team-a'],
      ['sessionName', 'STS_SIDECAR_SESSION_NAME', 'x'],
      ['flexAuthUrl', 'STS_SIDECAR_FLEX_AUTH_URL', 'https://flex-auth.auth.svc/v1/decisions'],
      ['flexAuthUrl', 'STS_SIDECAR_FLEX_AUTH_URL', 'ftp://flex-auth'],
    ];
    const notifyUrls = [
      'https://hooks.example:8443/rotated?x=1',
      'http://127.0.0.1:8080/',
      'https://user:pw@hooks.example/x',
      'http://user@hooks.example/x',
    ];
    for (const url of notifyUrls) {
      const chart = check(withOverride({ notify: { url } })).length === 0;
      const sidecar = VARIABLES.STS_SIDECAR_NOTIFY_URL.schema.safeParse(url).success;
      expect(chart, `notify.url=${url}: chart ${chart}, sidecar ${sidecar}`).toBe(sidecar);
    }
    for (const [key, variable, sample] of samples) {
      const chart = check(withOverride({ [key]: sample })).length === 0;
      const sidecar = VARIABLES[variable].schema.safeParse(sample).success;
      expect(chart, `${key}=${JSON.stringify(sample)}: chart ${chart}, sidecar ${sidecar}`).toBe(sidecar);
    }
  });
});
