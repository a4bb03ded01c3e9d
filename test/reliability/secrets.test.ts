// Issue 5.6: no token or secret in logs, stderr, error messages, check-config output, argv or the
// environment; credential files never wider than the configured mode, whatever the umask.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultPolicy, startLocalStack, type LocalStack } from '../stack/local-stack.ts';
import { writeProjectedToken } from '../stack/projected-token.ts';
import { recordOutput, recordSecret } from '../support/secrets.ts';
import { runSidecarCommand, sidecarArgv, startSidecar } from '../support/sidecar-process.ts';
import { CREDENTIAL_FILES } from '../../src/adapters/credential-dir.ts';
import { nextEvent, recordIssuedSecrets } from './support/harness.ts';

/** Every secret value this file saw: tokens, secret keys, session tokens. */
function secretsOf(stack: LocalStack, tokens: readonly string[]): string[] {
  return [...tokens, ...(stack.standIn?.issued ?? []).flatMap((c) => [c.secretAccessKey, c.sessionToken])];
}

function leaks(text: string, secrets: readonly string[]): string[] {
  return secrets.filter((s) => text.includes(s)).map((s) => `${s.slice(0, 6)}... (${s.length} chars)`);
}

describe('secrets never leave the credential files', () => {
  let stack: LocalStack;
  const tokens: string[] = [];
  beforeAll(async () => {
    stack = await startLocalStack({ sts: 'stand-in' });
    tokens.push(await stack.rotateToken());
  });
  afterAll(async () => {
    recordIssuedSecrets(stack);
    await stack?.close();
  });

  it('failure paths: hostile echoes of the token in STS and flex-auth answers never reach the logs', async () => {
    const token = tokens[0]!;
    const p = startSidecar(
      {
        ...stack.env,
        STS_SIDECAR_BACKOFF_INITIAL_SECONDS: '0.2',
        STS_SIDECAR_BACKOFF_MAX_SECONDS: '1',
        STS_SIDECAR_TTL_SECONDS: '3600',
      },
      ['run'],
      { label: 'secrets-failures' },
    );
    const pol = defaultPolicy(stack.tenant, stack.bucket, stack.prefix);
    const steps: [string, () => Promise<void>][] = [
      [
        'STS InvalidIdentityToken whose message quotes the token',
        async () =>
          stack.standIn!.setFault({
            kind: 'error',
            status: 400,
            code: 'InvalidIdentityToken',
            message: `bad token ${token}`,
          }),
      ],
      [
        'STS 500 whose message quotes the token',
        async () =>
          stack.standIn!.setFault({ kind: 'error', status: 500, code: 'InternalFailure', message: token }),
      ],
      [
        'STS ValidationError about duration quoting the token',
        async () =>
          stack.standIn!.setFault({
            kind: 'error',
            status: 400,
            code: 'ValidationError',
            message: `DurationSeconds ${token}`,
          }),
      ],
      [
        'flex-auth deny whose reasons quote the token',
        () =>
          stack.writePolicy({
            ...pol,
            fault: {
              kind: 'body',
              status: 403,
              body: JSON.stringify({ decision: 'deny', reasons: [token] }),
            },
          }),
      ],
      [
        'flex-auth deny whose short reason quotes the token signature',
        () =>
          stack.writePolicy({
            ...pol,
            fault: {
              kind: 'body',
              status: 403,
              body: JSON.stringify({ decision: 'deny', reasons: [token.slice(-200)] }),
            },
          }),
      ],
      [
        'flex-auth allow whose decision_id is the token',
        () =>
          stack.writePolicy({
            ...pol,
            fault: {
              kind: 'body',
              status: 200,
              body: JSON.stringify({ decision: 'allow', decision_id: token }),
            },
          }),
      ],
      [
        'flex-auth non-JSON body that is the token',
        () => stack.writePolicy({ ...pol, fault: { kind: 'body', status: 200, body: token } }),
      ],
      [
        'flex-auth wrong shape with the token as a field',
        () =>
          stack.writePolicy({
            ...pol,
            fault: { kind: 'body', status: 200, body: JSON.stringify({ decision: token }) },
          }),
      ],
      ['flex-auth plain deny', () => stack.writePolicy({ rules: [] })],
    ];
    try {
      await p.waitForEvent('lease.acquired', 20_000);
      for (const [, inject] of steps) {
        await stack.writePolicy(pol);
        stack.standIn!.setFault(undefined);
        await inject();
        const from = p.lines.length;
        p.child.kill('SIGHUP');
        await nextEvent(p, ['lease.failed', 'lease.denied'], from, 10_000);
      }
      // A token file whose content is the token plus junk (not a JWT any more).
      await stack.writePolicy(pol);
      stack.standIn!.setFault(undefined);
      const from = p.lines.length;
      const { writeFile } = await import('node:fs/promises');
      await writeFile(stack.tokenFile + '.junk', `${token}.junk`);
      await (await import('node:fs/promises')).rename(stack.tokenFile + '.junk', stack.tokenFile);
      p.child.kill('SIGHUP');
      const bad = await nextEvent(p, ['lease.failed'], from, 10_000);
      expect(bad.line.code).toBe('ERR_TOKEN_MALFORMED');
    } finally {
      p.kill();
      await p.exited;
      await rm(stack.tokenFile, { force: true });
      tokens.push(await stack.rotateToken());
    }
    const output = p.stdout() + p.stderr();
    expect(
      p.lines.filter((l) => l.event === 'lease.failed' || l.event === 'lease.denied').length,
    ).toBeGreaterThanOrEqual(steps.length);
    expect(leaks(output, secretsOf(stack, tokens))).toEqual([]);
  });

  // BUG F4 (docs/reliability.md): the STS's <Code> is copied verbatim and unbounded into the log message,
  // so an STS (or anything on a plain-http path to it) that echoes the request decides what is logged.
  it('an STS error whose <Code> echoes the token does not put the token in the log', async () => {
    const token = await stack.issuer.mint({ sub: stack.subject, aud: stack.audience }, { ttlSeconds: 3600 });
    recordSecret(token);
    await writeProjectedToken(path.dirname(stack.tokenFile), token);
    const p = startSidecar({ ...stack.env, STS_SIDECAR_TTL_SECONDS: '3600' }, ['run'], {
      label: 'secrets-code-echo',
    });
    try {
      await p.waitForEvent('lease.acquired', 20_000);
      stack.standIn!.setFault({ kind: 'error', status: 400, code: token });
      const from = p.lines.length;
      p.child.kill('SIGHUP');
      const failed = await nextEvent(p, ['lease.failed'], from, 10_000);
      expect(failed.line.code).toBe('ERR_STS_REJECTED');
      expect(String(failed.line.message).length).toBeLessThan(300);
      expect(leaks(p.stdout() + p.stderr(), [token])).toEqual([]);
    } finally {
      stack.standIn!.setFault(undefined);
      p.kill();
      await p.exited;
      tokens.push(await stack.rotateToken());
    }
  });

  it('one-shot failures and check-config: stderr/stdout carry no secret, secret-looking values are not echoed', async () => {
    const token = tokens.at(-1)!;
    const outDir = await mkdtemp(path.join(os.tmpdir(), 'sts-rel-sec-'));
    const password = `pw-${token.slice(-24)}`;
    const signature = `sig-${token.slice(-30, -6)}`;
    recordSecret(password);
    recordSecret(signature);
    try {
      stack.standIn!.setFault({ kind: 'error', status: 403, code: 'AccessDenied', message: token });
      const once = await runSidecarCommand({ ...stack.env, STS_SIDECAR_OUTPUT_DIR: outDir }, ['once']);
      stack.standIn!.setFault(undefined);
      expect(once.code).toBe(3);
      expect(once.stderr).toContain('ERR_STS_ACCESS_DENIED');

      const badConfig = await runSidecarCommand(
        { ...stack.env, STS_SIDECAR_ROLE_ARN: token, STS_SIDECAR_SESSION_NAME: token },
        ['check-config'],
      );
      expect(badConfig.code).toBe(2);
      expect(badConfig.stderr).toContain('STS_SIDECAR_ROLE_ARN');

      const url = `https://svc:${password}@flex-auth.example:8443/v1/decisions?X-Signature=${signature}`;
      const goodConfig = await runSidecarCommand(
        { ...stack.env, STS_SIDECAR_FLEX_AUTH_URL: url, STS_SIDECAR_STS_ENDPOINT: url },
        ['check-config'],
      );
      expect(goodConfig.code).toBe(0);
      expect(goodConfig.stdout).toContain('flex-auth.example');

      const all = [once, badConfig, goodConfig].map((r) => r.stdout + r.stderr).join('\n');
      expect(leaks(all, [...secretsOf(stack, tokens), password, signature])).toEqual([]);
    } finally {
      stack.standIn!.setFault(undefined);
      await rm(outDir, { recursive: true, force: true });
    }
  });

  it('no secret in the argv or the environment of the running sidecar, and it spawns no child', async () => {
    const p = startSidecar({ ...stack.env, STS_SIDECAR_TTL_SECONDS: '3600' }, ['run'], {
      label: 'secrets-proc',
    });
    try {
      await p.waitForEvent('lease.acquired', 20_000);
      const pid = p.child.pid!;
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter((a) => a !== '');
      const environ = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0').filter((e) => e !== '');
      const onDisk = await Promise.all(
        ['secret-key', 'session-token'].map((n) => readFile(path.join(stack.outputDir, n), 'utf8')),
      );
      const secrets = [...secretsOf(stack, tokens), await readFile(stack.tokenFile, 'utf8'), ...onDisk];
      expect(leaks(cmdline.join(' '), secrets)).toEqual([]);
      expect(leaks(environ.join('\n'), secrets)).toEqual([]);
      expect(cmdline.slice(1)).toEqual(sidecarArgv(['run']));
      // Exactly the variables it was given: nothing added at exec time.
      expect(environ.map((e) => e.slice(0, e.indexOf('='))).sort()).toEqual(
        Object.keys({ PATH: '', HOME: '', TZ: '', ...stack.env, STS_SIDECAR_TTL_SECONDS: '' }).sort(),
      );
      const children = await Promise.all(
        (await readdir(`/proc/${pid}/task`)).map((t) =>
          readFile(`/proc/${pid}/task/${t}/children`, 'utf8').catch(() => ''),
        ),
      );
      expect(children.join('').trim()).toBe('');
    } finally {
      p.kill();
      await p.exited;
    }
  });

  describe('file modes under umask 000', () => {
    /** `once` through `sh -c 'umask 000; exec node ...'`, output recorded for the secret scan. */
    async function onceUnderUmask(env: Record<string, string>): Promise<number | null> {
      const child = spawn(
        'sh',
        ['-c', 'umask 000; exec "$0" "$@"', process.execPath, ...sidecarArgv(['once'])],
        {
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/tmp', TZ: 'UTC', ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      child.stdout.setEncoding('utf8').on('data', (c: string) => recordOutput('umask-once', c));
      child.stderr.setEncoding('utf8').on('data', (c: string) => recordOutput('umask-once-stderr', c));
      return new Promise((resolve) => child.once('close', (c) => resolve(c)));
    }

    for (const [fileMode, dirMode] of [
      [undefined, 0o750],
      ['0400', 0o700],
      ['0440', 0o750],
      ['0644', 0o755],
    ] as const) {
      const expectedFile = fileMode === undefined ? 0o440 : parseInt(fileMode, 8);
      it(`STS_SIDECAR_FILE_MODE=${fileMode ?? '(default 0440)'}: files ${expectedFile.toString(8)}, generation dir ${dirMode.toString(8)}, twice in a row`, async () => {
        const outDir = await mkdtemp(path.join(os.tmpdir(), 'sts-rel-umask-'));
        try {
          const env = {
            ...stack.env,
            STS_SIDECAR_OUTPUT_DIR: outDir,
            ...(fileMode ? { STS_SIDECAR_FILE_MODE: fileMode } : {}),
          };
          for (let round = 0; round < 2; round++) {
            expect(await onceUnderUmask(env)).toBe(0);
            const gen = await readlink(path.join(outDir, '..data'));
            expect((await stat(path.join(outDir, gen))).mode & 0o7777).toBe(dirMode);
            for (const n of CREDENTIAL_FILES) {
              expect(((await stat(path.join(outDir, n))).mode & 0o7777).toString(8), n).toBe(
                expectedFile.toString(8),
              );
            }
            // Nothing else hidden in the generation (no temporaries with a wider mode).
            expect((await readdir(path.join(outDir, gen))).sort()).toEqual([...CREDENTIAL_FILES].sort());
          }
          // The directory the operator made is not touched.
          expect((await stat(outDir)).mode & 0o7777).toBe(0o700);
        } finally {
          await rm(outDir, { recursive: true, force: true });
        }
      });
    }
  });
});
