import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.ts';
import { describeConfig, loadConfig } from './load.ts';

const base = {
  STS_SIDECAR_TENANT: 'team-a',
  STS_SIDECAR_BUCKET: 'artifacts',
  STS_SIDECAR_FLEX_AUTH_URL: 'https://flex-auth.example/v1/decisions',
  STS_SIDECAR_ROLE_ARN: 'arn:aws:iam::123456789012:role/app',
};

function issues(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  return [];
}

describe('secret sink configuration', () => {
  it('defaults to the directory sink, with no secret settings', () => {
    const c = loadConfig(base);
    expect(c.sink).toBe('directory');
    expect(c.secret).toBeUndefined();
  });

  it('sink secret: the in-cluster defaults and the four default keys', () => {
    const c = loadConfig({ ...base, STS_SIDECAR_SINK: 'secret', STS_SIDECAR_SECRET_NAME: 'cnpg-s3' });
    expect(c.secret).toEqual({
      name: 'cnpg-s3',
      namespace: undefined,
      keys: ['ACCESS_KEY_ID', 'ACCESS_SECRET_KEY', 'ACCESS_SESSION_TOKEN', 'EXPIRATION'],
      apiUrl: 'https://kubernetes.default.svc',
      tokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
      caFile: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
    });
    expect(describeConfig(c)).toMatchObject({
      STS_SIDECAR_SINK: 'secret',
      STS_SIDECAR_SECRET_NAME: 'cnpg-s3',
    });
  });

  it('sink secret without a name is refused, naming the variable', () => {
    expect(issues({ ...base, STS_SIDECAR_SINK: 'secret' })).toEqual([
      'STS_SIDECAR_SECRET_NAME: required when STS_SIDECAR_SINK is secret',
    ]);
  });

  it.each([
    ['three keys', 'A,B,C', /exactly four keys/],
    ['a repeated key', 'A,B,C,A', /must differ/],
    ['a key with a space', 'A,B C,D,E', /valid Secret key/],
  ])('refuses STS_SIDECAR_SECRET_KEYS with %s', (_what, keys, message) => {
    const found = issues({
      ...base,
      STS_SIDECAR_SINK: 'secret',
      STS_SIDECAR_SECRET_NAME: 's',
      STS_SIDECAR_SECRET_KEYS: keys,
    });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/^STS_SIDECAR_SECRET_KEYS: /);
    expect(found[0]).toMatch(message);
  });

  it('refuses a Secret name or namespace that is not a Kubernetes name, and an unknown sink', () => {
    expect(issues({ ...base, STS_SIDECAR_SINK: 'secret', STS_SIDECAR_SECRET_NAME: 'Cnpg_S3' })).toEqual([
      'STS_SIDECAR_SECRET_NAME: must be a Kubernetes object name (lowercase DNS-1123)',
    ]);
    expect(
      issues({
        ...base,
        STS_SIDECAR_SINK: 'secret',
        STS_SIDECAR_SECRET_NAME: 's',
        STS_SIDECAR_SECRET_NAMESPACE: 'A',
      }),
    ).toEqual(['STS_SIDECAR_SECRET_NAMESPACE: must be a Kubernetes object name (lowercase DNS-1123)']);
    expect(issues({ ...base, STS_SIDECAR_SINK: 'configmap' })[0]).toMatch(/^STS_SIDECAR_SINK: /);
  });
});
