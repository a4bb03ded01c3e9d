import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.ts';
import { describeConfig, loadConfig } from './load.ts';
import { VARIABLES, VARIABLE_NAMES } from './schema.ts';
import { baseConfigEnv as base, configIssues as issues } from '../../test/support/config-env.ts';

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const c = loadConfig(base);
    expect(c).toMatchObject({
      tokenFile: '/var/run/secrets/sts-sidecar/token',
      tokenAudience: undefined,
      prefix: '',
      actions: ['list', 'read'],
      ttlSeconds: 3600,
      stsRegion: 'us-east-1',
      backend: 'aws',
      outputDir: '/var/run/sts-sidecar/credentials',
      fileMode: 0o440,
      listen: { host: '0.0.0.0', port: 8081 },
      logLevel: 'info',
      wipeOnExit: false,
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('every documented default parses under its own schema', () => {
    for (const name of VARIABLE_NAMES) {
      const d = VARIABLES[name].default;
      if (d !== undefined) expect(VARIABLES[name].schema.safeParse(d).success, name).toBe(true);
    }
  });

  it('names every missing required variable', () => {
    expect(issues({})).toEqual([
      'STS_SIDECAR_TENANT: required but not set',
      'STS_SIDECAR_BUCKET: required but not set',
      'STS_SIDECAR_FLEX_AUTH_URL: required but not set',
    ]);
  });

  it('rejects unknown STS_SIDECAR_* variables and suggests the right name', () => {
    expect(issues({ ...base, STS_SIDECAR_TOKEN_FIEL: '/x' })).toEqual([
      'STS_SIDECAR_TOKEN_FIEL: unknown variable (did you mean STS_SIDECAR_TOKEN_FILE?)',
    ]);
    expect(issues({ ...base, OTHER_VAR: 'x' })).toEqual([]);
  });

  const bad: [string, string][] = [
    ['STS_SIDECAR_TENANT', 'has space'],
    ['STS_SIDECAR_BUCKET', 'Not_A_Bucket'],
    ['STS_SIDECAR_PREFIX', '/leading'],
    ['STS_SIDECAR_PREFIX', 'wild*card'],
    ['STS_SIDECAR_ACTIONS', 'read,admin'],
    ['STS_SIDECAR_ACTIONS', ','],
    ['STS_SIDECAR_TTL_SECONDS', '12abc'],
    ['STS_SIDECAR_TTL_SECONDS', '99999999'],
    ['STS_SIDECAR_FLEX_AUTH_URL', 'ftp://x/y'],
    ['STS_SIDECAR_FLEX_AUTH_URL', 'not a url'],
    ['STS_SIDECAR_STS_ENDPOINT', 'localhost:7480'],
    ['STS_SIDECAR_STS_REGION', 'US EAST'],
    ['STS_SIDECAR_ROLE_ARN', 'role/app'],
    ['STS_SIDECAR_SESSION_NAME', 'has:colon'],
    ['STS_SIDECAR_BACKEND', 'vault'],
    ['STS_SIDECAR_STS_MIN_DURATION_SECONDS', '-1'],
    ['STS_SIDECAR_STS_MAX_DURATION_SECONDS', '10'],
    ['STS_SIDECAR_FILE_MODE', '0777'],
    ['STS_SIDECAR_FILE_MODE', '0040'],
    ['STS_SIDECAR_FILE_MODE', 'rw-r-----'],
    ['STS_SIDECAR_LISTEN', '8081'],
    ['STS_SIDECAR_LISTEN', '0.0.0.0:99999'],
    ['STS_SIDECAR_LOG_LEVEL', 'loud'],
    ['STS_SIDECAR_WIPE_ON_EXIT', 'maybe'],
    ['STS_SIDECAR_REFRESH_FRACTION', '0.95'],
    ['STS_SIDECAR_REFRESH_JITTER', 'lots'],
    ['STS_SIDECAR_READY_MARGIN_SECONDS', '7200'],
    ['STS_SIDECAR_BACKOFF_INITIAL_SECONDS', '0'],
    ['STS_SIDECAR_BACKOFF_MAX_SECONDS', '-5'],
    ['STS_SIDECAR_REQUEST_TIMEOUT_SECONDS', '1000'],
    ['STS_SIDECAR_TOKEN_AUDIENCE', ' '.repeat(0) + '\u0000'],
  ];
  it.each(bad)('%s=%j is rejected with the variable named and the value not echoed', (name, value) => {
    const found = issues({ ...base, [name]: value });
    expect(found.length, `${name}=${value} was accepted`).toBeGreaterThan(0);
    expect(found.some((i) => i.startsWith(`${name}:`))).toBe(true);
    for (const i of found) if (value.length > 3) expect(i).not.toContain(value);
  });

  it('checks rules across variables', () => {
    expect(issues({ ...base, STS_SIDECAR_ROLE_ARN: undefined })).toEqual([
      'STS_SIDECAR_ROLE_ARN: required when the backend is aws',
    ]);
    expect(issues({ ...base, STS_SIDECAR_ROLE_ARN: undefined, STS_SIDECAR_BACKEND: 'minio' })).toEqual([]);
    expect(issues({ ...base, STS_SIDECAR_ROLE_ARN: undefined, STS_SIDECAR_BACKEND: 'seaweedfs' })).toEqual([
      'STS_SIDECAR_ROLE_ARN: required when the backend is seaweedfs',
    ]);
    expect(issues({ ...base, STS_SIDECAR_TTL_SECONDS: '600' })[0]).toMatch(
      /^STS_SIDECAR_TTL_SECONDS: must be at least/,
    );
    expect(issues({ ...base, STS_SIDECAR_BACKOFF_INITIAL_SECONDS: '90' })[0]).toMatch(
      /^STS_SIDECAR_BACKOFF_INITIAL_SECONDS/,
    );
    expect(issues({ ...base, STS_SIDECAR_READY_MARGIN_SECONDS: '3600' })[0]).toMatch(
      /^STS_SIDECAR_READY_MARGIN_SECONDS/,
    );
    expect(
      issues({ ...base, STS_SIDECAR_REFRESH_FRACTION: '0.2', STS_SIDECAR_REFRESH_JITTER: '0.2' }),
    ).toEqual(['STS_SIDECAR_REFRESH_JITTER: must be smaller than STS_SIDECAR_REFRESH_FRACTION']);
  });

  it('keeps a TTL above the STS maximum as configured (the loop steps it down and says so)', () => {
    expect(loadConfig({ ...base, STS_SIDECAR_TTL_SECONDS: '7200' }).ttlSeconds).toBe(7200);
  });

  it('defaults the backend from the endpoint', () => {
    expect(loadConfig({ ...base, STS_SIDECAR_STS_ENDPOINT: 'http://127.0.0.1:7480' }).backend).toBe(
      'generic',
    );
  });

  it('reads an optional JSON config file, with the environment winning', () => {
    const file = JSON.stringify({
      STS_SIDECAR_BUCKET: 'from-file',
      STS_SIDECAR_PREFIX: 'p/',
      STS_SIDECAR_TTL_SECONDS: 1800,
    });
    const c = loadConfig(
      { ...base, STS_SIDECAR_CONFIG_FILE: '/etc/x.json', STS_SIDECAR_PREFIX: 'env/' },
      () => file,
    );
    expect(c.bucket).toBe('artifacts');
    expect(c.prefix).toBe('env/');
    expect(c.ttlSeconds).toBe(1800);
  });

  it('names the config file problems', () => {
    expect(issues({ ...base, STS_SIDECAR_CONFIG_FILE: '/etc/x.json' })).toEqual([]);
    const bad = (text: string) => {
      try {
        loadConfig({ ...base, STS_SIDECAR_CONFIG_FILE: '/etc/x.json' }, () => text);
        return [];
      } catch (err) {
        return (err as ConfigError).issues;
      }
    };
    expect(bad('{')).toEqual(['STS_SIDECAR_CONFIG_FILE: /etc/x.json is not valid JSON']);
    expect(bad('{"STS_SIDECAR_NOPE": 1}')[0]).toMatch(/^STS_SIDECAR_NOPE: unknown key in \/etc\/x.json/);
  });

  it('describeConfig shows every variable and hides URL credentials', () => {
    const c = loadConfig({
      ...base,
      STS_SIDECAR_FLEX_AUTH_URL: 'https://user:hunter2secret@pdp.example/v1?sig=abcdef123',
    });
    const d = describeConfig(c);
    expect(Object.keys(d).sort()).toEqual([...VARIABLE_NAMES].sort());
    expect(JSON.stringify(d)).not.toContain('hunter2secret');
    expect(JSON.stringify(d)).not.toContain('abcdef123');
  });
});
