/** The CLI contract of the built bundle: commands, exit codes, what goes to stdout and stderr. */
import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VARIABLE_NAMES } from '../../src/config/schema.ts';
import { startLocalStack, type LocalStack } from '../stack/local-stack.ts';
import { readSet } from '../support/credentials.ts';
import { recordSecret } from '../support/secrets.ts';
import { runSidecarCommand } from '../support/sidecar-process.ts';
import { snapshotDir, visibleNames } from '../reliability/support/harness.ts';

let s: LocalStack;

/** The JSON log lines on stderr (credential-process keeps stdout for the credentials). */
const stderrEvents = (stderr: string): Array<Record<string, unknown>> =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
beforeAll(async () => {
  s = await startLocalStack({ sts: 'stand-in' });
});
afterAll(async () => {
  await s.close();
});

describe('sts-sidecar CLI', () => {
  it('--version and --help', async () => {
    const v = await runSidecarCommand({}, ['--version']);
    expect(v.code).toBe(0);
    expect(v.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const h = await runSidecarCommand({}, ['--help']);
    expect(h.code).toBe(0);
    for (const c of ['run', 'once', 'credential-process', 'check-config']) expect(h.stdout).toContain(c);
    for (const n of VARIABLE_NAMES) expect(h.stdout).toContain(n);
  });

  it('an unknown command is a usage error (exit 2)', async () => {
    const r = await runSidecarCommand({}, ['renew']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command: renew');
  });

  it('check-config prints the effective configuration', async () => {
    const r = await runSidecarCommand(s.env, ['check-config']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.valid).toBe(true);
    expect(out.config.STS_SIDECAR_TENANT).toBe('team-a');
    expect(Object.keys(out.config).sort()).toEqual([...VARIABLE_NAMES].sort());
  });

  it('check-config with STS_SIDECAR_BACKEND=seaweedfs warns that the token lifetime may bound the lease', async () => {
    const plain = JSON.parse((await runSidecarCommand(s.env, ['check-config'])).stdout);
    expect(plain.warnings.join('\n')).not.toContain('capped_by_token_exp');
    const r = await runSidecarCommand(
      { ...s.env, STS_SIDECAR_BACKEND: 'seaweedfs', STS_SIDECAR_ROLE_ARN: 'arn:aws:iam::role/sidecar' },
      ['check-config'],
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.config.STS_SIDECAR_BACKEND).toBe('seaweedfs');
    expect(out.warnings).toContainEqual(
      expect.stringMatching(/expirationSeconds bounds the lease.*capped_by_token_exp/),
    );
  });

  it('check-config with STS_SIDECAR_BACKEND=minio says which MinIO mode it assumes and warns without a role ARN', async () => {
    const { STS_SIDECAR_ROLE_ARN: _arn, ...env } = s.env;
    const claim = await runSidecarCommand({ ...env, STS_SIDECAR_BACKEND: 'minio' }, ['check-config']);
    expect(claim.code, claim.stderr).toBe(0);
    const out = JSON.parse(claim.stdout);
    expect(out.backend_mode).toBe('minio-claim');
    expect(out.warnings).toContainEqual(
      expect.stringMatching(/STS_SIDECAR_ROLE_ARN is not set.*role-policy mode/),
    );
    const role = await runSidecarCommand(
      {
        ...env,
        STS_SIDECAR_BACKEND: 'minio',
        STS_SIDECAR_ROLE_ARN: 'arn:minio:iam:::role/1qe2HZ2YxR78x6emVcxHaqWEXv0',
      },
      ['check-config'],
    );
    const roleOut = JSON.parse(role.stdout);
    expect(roleOut.backend_mode).toBe('minio-role-policy');
    expect(roleOut.warnings.join('\n')).not.toContain('STS_SIDECAR_ROLE_ARN');
  });

  it('check-config rejects bad settings naming each variable, without echoing values', async () => {
    const secretish = 'hunter2-super-secret-value';
    recordSecret(secretish);
    const r = await runSidecarCommand(
      {
        ...s.env,
        STS_SIDECAR_TTL_SECONDS: secretish,
        STS_SIDECAR_FLEX_AUTH_URL: `ftp://${secretish}`,
        STS_SIDECAR_ACTIONS: 'read,fly',
        STS_SIDECAR_LISTEN: 'nowhere',
        STS_SIDECAR_TYPO: '1',
      },
      ['check-config'],
    );
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    for (const name of [
      'STS_SIDECAR_TTL_SECONDS',
      'STS_SIDECAR_FLEX_AUTH_URL',
      'STS_SIDECAR_ACTIONS',
      'STS_SIDECAR_LISTEN',
      'STS_SIDECAR_TYPO',
    ]) {
      expect(r.stderr).toContain(name);
    }
    expect(r.stderr).toContain('ERR_CONFIG');
    expect(r.stderr).not.toContain(secretish);
  });

  it('once writes one set and exits 0', async () => {
    const r = await runSidecarCommand(s.env, ['once']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.lines.map((l) => l.event)).toEqual(['lease.acquired']);
    expect((await readSet(s.outputDir)).accessKey).toBe(r.lines[0]!.access_key_id);
  });

  it('once exits 4 on a deny and 3 when the STS is down, with the code on stderr', async () => {
    await s.writePolicy({ rules: [] });
    const denied = await runSidecarCommand(s.env, ['once']);
    expect(denied.code).toBe(4);
    expect(denied.stderr).toMatch(/sts-sidecar once: .*\(ERR_POLICY_DENIED\)/);
    // Every lease emits an audit event: exactly one outcome line, the daemon's shape, after the removal of
    // the set the test before left (fail closed).
    expect(denied.lines.map((l) => l.event)).toEqual(['lease.revoked', 'lease.denied']);
    expect(denied.lines[1]).toMatchObject({ code: 'ERR_POLICY_DENIED', tenant: 'team-a', attempt: 1 });
    expect(await readdir(s.outputDir)).toEqual([]);
    await s.writePolicy({
      rules: [
        { tenant: 'team-a', bucket: 'artifacts', prefix: 'team-a/', actions: ['read', 'write', 'list'] },
      ],
    });
    const down = await runSidecarCommand({ ...s.env, STS_SIDECAR_STS_ENDPOINT: 'http://127.0.0.1:9' }, [
      'once',
    ]);
    expect(down.code).toBe(3);
    expect(down.stderr).toMatch(/\(ERR_STS_UNREACHABLE\)/);
    expect(down.lines.map((l) => l.event)).toEqual(['lease.failed']);
    expect(down.lines[0]).toMatchObject({ code: 'ERR_STS_UNREACHABLE', retryable: true });
  });

  it('credential-process prints only the credential_process JSON on stdout and writes nothing', async () => {
    const before = await readdir(s.outputDir);
    const r = await runSidecarCommand(s.env, ['credential-process']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    recordSecret(doc.SecretAccessKey);
    recordSecret(doc.SessionToken);
    expect(Object.keys(doc)).toEqual([
      'Version',
      'AccessKeyId',
      'SecretAccessKey',
      'SessionToken',
      'Expiration',
    ]);
    expect(doc.Version).toBe(1);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(await readdir(s.outputDir)).toEqual(before);
    // The lease's audit event goes to stderr, exactly once, and names the key it handed out.
    const events = stderrEvents(r.stderr);
    expect(events.map((e) => e.event)).toEqual(['lease.acquired']);
    expect(events[0]).toMatchObject({ access_key_id: doc.AccessKeyId, tenant: 'team-a' });
    expect(r.stderr).not.toContain(doc.SecretAccessKey);
  });

  it('run exits 2 naming STS_SIDECAR_LISTEN when the port is taken', async () => {
    const { createServer } = await import('node:net');
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as import('node:net').AddressInfo).port;
    try {
      const r = await runSidecarCommand(
        { ...s.env, STS_SIDECAR_LISTEN: `127.0.0.1:${port}` },
        ['run'],
        10_000,
      );
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`STS_SIDECAR_LISTEN: cannot listen on 127.0.0.1:${port} (EADDRINUSE)`);
    } finally {
      blocker.close();
    }
  });

  it('credential-process failures go to stderr only', async () => {
    const r = await runSidecarCommand({ ...s.env, STS_SIDECAR_TOKEN_FILE: '/nonexistent/token' }, [
      'credential-process',
    ]);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('ERR_TOKEN_MISSING');
    expect(r.stderr).toContain('/nonexistent/token');
    const events = stderrEvents(r.stderr);
    expect(events.map((e) => e.event)).toEqual(['lease.failed']);
    expect(events[0]).toMatchObject({ code: 'ERR_TOKEN_MISSING' });
  });

  it('credential-process denied: one lease.denied on stderr, exit 4, and the files another process wrote stay', async () => {
    const once = await runSidecarCommand(s.env, ['once']);
    expect(once.code, once.stderr).toBe(0);
    const before = await snapshotDir(s.outputDir);
    expect(visibleNames(before)).toHaveLength(5);
    await s.writePolicy({ rules: [] });
    try {
      const r = await runSidecarCommand(s.env, ['credential-process']);
      expect(r.code).toBe(4);
      expect(r.stdout).toBe('');
      // It writes nothing, so it removes nothing either (README).
      expect(await snapshotDir(s.outputDir)).toEqual(before);
      const events = stderrEvents(r.stderr);
      expect(events.map((e) => e.event)).toEqual(['lease.denied']);
      expect(events[0]).toMatchObject({ code: 'ERR_POLICY_DENIED' });
    } finally {
      await s.writePolicy({
        rules: [
          { tenant: 'team-a', bucket: 'artifacts', prefix: 'team-a/', actions: ['read', 'write', 'list'] },
        ],
      });
    }
  });

  it('check-config warns about an http:// IdP token URL that is not loopback, not about a loopback one', async () => {
    const idp = (url: string) => ({
      ...s.env,
      STS_SIDECAR_IDENTITY_EXCHANGE: 'client-assertion',
      STS_SIDECAR_IDP_TOKEN_URL: url,
    });
    const remote = await runSidecarCommand(idp('http://keycloak.iam.svc:8080/realms/sts/token'), [
      'check-config',
    ]);
    expect(remote.code, remote.stderr).toBe(0);
    expect(JSON.parse(remote.stdout).warnings).toContainEqual(
      expect.stringMatching(/STS_SIDECAR_IDP_TOKEN_URL is http:\/\/ to keycloak\.iam\.svc, not loopback/),
    );
    for (const ok of [
      'http://127.0.0.1:8080/token',
      'http://localhost/token',
      'https://keycloak.iam.svc/token',
    ]) {
      const r = await runSidecarCommand(idp(ok), ['check-config']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).warnings.join('\n'), ok).not.toContain('STS_SIDECAR_IDP_TOKEN_URL');
    }
  });

  it('once logs the insecure IdP URL warning once at start', async () => {
    const r = await runSidecarCommand(
      {
        ...s.env,
        STS_SIDECAR_IDENTITY_EXCHANGE: 'client-assertion',
        STS_SIDECAR_IDP_TOKEN_URL: 'http://192.0.2.1:9/token',
        STS_SIDECAR_REQUEST_TIMEOUT_SECONDS: '1',
      },
      ['once'],
    );
    expect(r.code).toBe(3);
    expect(r.lines.filter((l) => l.event === 'sidecar.config_warning')).toHaveLength(1);
    expect(r.lines.map((l) => l.event)).toEqual(['sidecar.config_warning', 'lease.failed']);
  });
});
