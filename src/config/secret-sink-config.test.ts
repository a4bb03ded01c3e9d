import { describe, expect, it } from 'vitest';
import { describeConfig, loadConfig } from './load.ts';
import { baseConfigEnv as base, configIssues as issues } from '../../test/support/config-env.ts';

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
    ).toEqual([
      'STS_SIDECAR_SECRET_NAMESPACE: must be a namespace name (DNS label: lowercase, 63 characters, no dots)',
    ]);
    expect(issues({ ...base, STS_SIDECAR_SINK: 'configmap' })[0]).toMatch(/^STS_SIDECAR_SINK: /);
  });

  it('refuses an http:// API server URL: the service-account token would go in cleartext', () => {
    const found = issues({
      ...base,
      STS_SIDECAR_SINK: 'secret',
      STS_SIDECAR_SECRET_NAME: 's',
      STS_SIDECAR_KUBE_API_URL: 'http://kubernetes.default.svc',
    });
    expect(found).toEqual([
      'STS_SIDECAR_KUBE_API_URL: must be an https:// URL (the service-account token is sent to it)',
    ]);
    expect(
      issues({
        ...base,
        STS_SIDECAR_SINK: 'secret',
        STS_SIDECAR_SECRET_NAME: 's',
        STS_SIDECAR_KUBE_API_URL: 'https://10.0.0.1:6443',
      }),
    ).toEqual([]);
  });

  it('refuses a namespace that is no DNS label (dots, 64 characters) and relative token or CA paths', () => {
    const secret = { ...base, STS_SIDECAR_SINK: 'secret', STS_SIDECAR_SECRET_NAME: 's' };
    for (const ns of ['team.a', 'a'.repeat(64)]) {
      expect(issues({ ...secret, STS_SIDECAR_SECRET_NAMESPACE: ns })).toEqual([
        'STS_SIDECAR_SECRET_NAMESPACE: must be a namespace name (DNS label: lowercase, 63 characters, no dots)',
      ]);
    }
    expect(issues({ ...secret, STS_SIDECAR_SECRET_NAMESPACE: 'a'.repeat(63) })).toEqual([]);
    expect(issues({ ...secret, STS_SIDECAR_KUBE_TOKEN_FILE: 'token' })).toEqual([
      'STS_SIDECAR_KUBE_TOKEN_FILE: must be an absolute path',
    ]);
    expect(issues({ ...secret, STS_SIDECAR_KUBE_CA_FILE: './ca.crt' })).toEqual([
      'STS_SIDECAR_KUBE_CA_FILE: must be an absolute path',
    ]);
  });
});
