/** The CLI contract of the built bundle: commands, exit codes, what goes to stdout and stderr. */
import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VARIABLE_NAMES } from '../../src/config/schema.ts';
import { startLocalStack, type LocalStack } from '../stack/local-stack.ts';
import { readSet } from '../support/credentials.ts';
import { recordSecret } from '../support/secrets.ts';
import { runSidecarCommand } from '../support/sidecar-process.ts';

let s: LocalStack;
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
  });
});
