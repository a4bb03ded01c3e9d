import { describe, expect, it } from 'vitest';
import { describeConfig, loadConfig } from './load.ts';
import { baseConfigEnv } from '../../test/support/config-env.ts';
import { ConfigError } from '../errors.ts';

const shared = {
  STS_SIDECAR_TENANT: 'team-a',
  STS_SIDECAR_FLEX_AUTH_URL: 'https://flex-auth.example/v1/decisions',
  STS_SIDECAR_ROLE_ARN: 'arn:aws:iam::123456789012:role/app',
  STS_SIDECAR_OUTPUT_DIR: '/run/creds',
};

/** loadConfig with `file` as the config file's JSON. */
function load(file: unknown, env: Record<string, string> = shared) {
  return loadConfig({ ...env, STS_SIDECAR_CONFIG_FILE: '/etc/sts/config.json' }, () => JSON.stringify(file));
}

function issues(file: unknown, env: Record<string, string> = shared): string[] {
  try {
    load(file, env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  return [];
}

const two = {
  leases: [
    { name: 'artifacts', bucket: 'artifacts', prefix: 'team-a/', actions: ['read', 'write', 'list'] },
    {
      name: 'datasets',
      bucket: 'shared-datasets',
      actions: 'read,list',
      ttlSeconds: 1800,
      roleArn: 'arn:aws:iam::123456789012:role/reader',
      sessionName: 'reader',
      outputDir: '/run/datasets',
    },
  ],
};

describe('named leases in STS_SIDECAR_CONFIG_FILE', () => {
  it('each lease has its own grant; role and session name fall back to the shared ones; the directory to <OUTPUT_DIR>/<name>', () => {
    const c = load(two);
    expect(c.leases).toEqual([
      {
        name: 'artifacts',
        bucket: 'artifacts',
        prefix: 'team-a/',
        actions: ['list', 'read', 'write'],
        ttlSeconds: 3600,
        roleArn: 'arn:aws:iam::123456789012:role/app',
        sessionName: undefined,
        outputDir: '/run/creds/artifacts',
        createOutputDir: true,
        secretName: undefined,
      },
      {
        name: 'datasets',
        bucket: 'shared-datasets',
        prefix: '',
        actions: ['list', 'read'],
        ttlSeconds: 1800,
        roleArn: 'arn:aws:iam::123456789012:role/reader',
        sessionName: 'reader',
        outputDir: '/run/datasets',
        createOutputDir: false,
        secretName: undefined,
      },
    ]);
    expect(Object.isFrozen(c.leases)).toBe(true);
  });

  it('the environment-only configuration is one unnamed lease on STS_SIDECAR_OUTPUT_DIR', () => {
    const c = loadConfig({ ...baseConfigEnv, STS_SIDECAR_PREFIX: 'p/' });
    expect(c.leases).toEqual([
      expect.objectContaining({ name: undefined, bucket: 'artifacts', prefix: 'p/', outputDir: c.outputDir }),
    ]);
    expect(describeConfig(c)).not.toHaveProperty('leases');
  });

  it('both at once is a config error naming each per-lease variable set', () => {
    expect(
      issues(two, { ...shared, STS_SIDECAR_BUCKET: 'artifacts', STS_SIDECAR_TTL_SECONDS: '900' }),
    ).toEqual([
      'STS_SIDECAR_BUCKET: not allowed with leases in STS_SIDECAR_CONFIG_FILE (each lease sets its own)',
      'STS_SIDECAR_TTL_SECONDS: not allowed with leases in STS_SIDECAR_CONFIG_FILE (each lease sets its own)',
    ]);
    expect(issues({ ...two, STS_SIDECAR_PREFIX: 'x/' })).toEqual([
      'STS_SIDECAR_PREFIX: not allowed with leases in STS_SIDECAR_CONFIG_FILE (each lease sets its own)',
    ]);
  });

  it('an error names the lease and the key, and never echoes the value', () => {
    const secretish = 'Not_A_Bucket_s3cr3t';
    const found = issues({
      leases: [
        { name: 'ok', bucket: 'artifacts' },
        { name: 'bad', bucket: secretish, actions: ['read', 'admin'], ttlSeconds: 10, extra: 1 },
        { name: 'Not A Label', bucket: 'artifacts' },
        'not an object',
      ],
    });
    expect(found).toEqual([
      'leases[1] (bad).bucket: must be a valid S3 bucket name',
      'leases[1] (bad).actions.1: each action must be one of read, write, list, delete',
      'leases[1] (bad).ttlSeconds: must be between 60 and 43200',
      'leases[1] (bad): unknown key extra',
      'leases[2].name: must be a DNS label (lowercase letters, digits, -; 63 at most)',
      'leases[3]: must be an object',
    ]);
    expect(found.join('\n')).not.toContain(secretish);
  });

  it('refuses duplicate names, a shared directory, an empty list, and a lease without a role where the backend needs one', () => {
    expect(
      issues({
        leases: [
          { name: 'a', bucket: 'artifacts' },
          { name: 'a', bucket: 'artifacts' },
        ],
      }),
    ).toEqual(['leases (a).name: two leases have this name']);
    expect(
      issues({
        leases: [
          { name: 'a', bucket: 'artifacts' },
          { name: 'b', bucket: 'artifacts', outputDir: '/run/creds/a/' },
        ],
      }),
    ).toEqual(['leases (b).outputDir: the same directory as lease a']);
    expect(
      issues({ leases: Array.from({ length: 17 }, (_, i) => ({ name: `l${i}`, bucket: 'artifacts' })) }),
    ).toEqual(['leases: at most 16 leases in /etc/sts/config.json']);
    expect(issues({ leases: [] })).toEqual([
      'leases: must be a non-empty list of leases in /etc/sts/config.json',
    ]);
    const { STS_SIDECAR_ROLE_ARN: _, ...noRole } = shared;
    expect(
      issues(
        {
          leases: [
            { name: 'a', bucket: 'artifacts', roleArn: 'arn:aws:iam::1:role/a' },
            { name: 'b', bucket: 'artifacts' },
          ],
        },
        { ...noRole, STS_SIDECAR_STS_ENDPOINT: 'http://127.0.0.1:1', STS_SIDECAR_BACKEND: 'ceph-rgw' },
      ),
    ).toEqual(['leases (b).roleArn: required when the backend is ceph-rgw']);
  });

  it('checks each lease against the STS minimum and the readiness margin', () => {
    expect(
      issues(
        { leases: [{ name: 'a', bucket: 'artifacts', ttlSeconds: 600 }] },
        { ...shared, STS_SIDECAR_READY_MARGIN_SECONDS: '600' },
      ),
    ).toEqual([
      'leases (a).ttlSeconds: must be at least STS_SIDECAR_STS_MIN_DURATION_SECONDS (900)',
      'STS_SIDECAR_READY_MARGIN_SECONDS: must be shorter than every lease (leases (a).ttlSeconds)',
    ]);
  });

  it('with the Secret sink each lease writes its own Secret <STS_SIDECAR_SECRET_NAME>-<name>', () => {
    const c = load(two, { ...shared, STS_SIDECAR_SINK: 'secret', STS_SIDECAR_SECRET_NAME: 'app-s3' });
    expect(c.leases.map((l) => l.secretName)).toEqual(['app-s3-artifacts', 'app-s3-datasets']);
  });

  it('check-config lists each lease and leaves the per-lease variables empty', () => {
    const d = describeConfig(load(two));
    expect(d.STS_SIDECAR_BUCKET).toBeNull();
    expect(d.STS_SIDECAR_ROLE_ARN).toBeNull();
    expect(d.leases).toEqual([
      expect.objectContaining({
        name: 'artifacts',
        outputDir: '/run/creds/artifacts',
        roleArn: shared.STS_SIDECAR_ROLE_ARN,
      }),
      expect.objectContaining({ name: 'datasets', outputDir: '/run/datasets', ttlSeconds: 1800 }),
    ]);
  });
});
