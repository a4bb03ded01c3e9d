/**
 * The built sidecar with the credentials endpoint and the three notification channels on, against the
 * local stack (real OIDC issuer and decision server; the STS stand-in for speed and short leases).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSet } from '../support/credentials.ts';
import { recordSecret } from '../support/secrets.ts';
import type { SidecarProcess } from '../support/sidecar-process.ts';
import { useStackTeardown } from '../support/stack-teardown.ts';

const { cleanup, stack, sidecar } = useStackTeardown();

const quick = {
  STS_SIDECAR_READY_MARGIN_SECONDS: '2',
  STS_SIDECAR_BACKOFF_INITIAL_SECONDS: '0.2',
  STS_SIDECAR_BACKOFF_MAX_SECONDS: '1',
  STS_SIDECAR_REQUEST_TIMEOUT_SECONDS: '2',
};

/** A webhook on 127.0.0.1 that keeps the JSON body of every POST (the URL notification); closed after the test. */
async function notifyReceiver(): Promise<{ posts: Record<string, unknown>[]; url: string }> {
  const posts: Record<string, unknown>[] = [];
  const receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      posts.push(JSON.parse(body) as Record<string, unknown>);
      res.end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  cleanup.push(() => new Promise((r) => receiver.close(r)));
  return { posts, url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/rotated` };
}

async function ask(url: string, token: string | undefined) {
  const res = await fetch(url, {
    headers: token === undefined ? {} : { authorization: token },
    signal: AbortSignal.timeout(5000),
  });
  const body = (await res.json()) as Record<string, string>;
  if (res.status === 200) {
    recordSecret(body.SecretAccessKey!);
    recordSecret(body.Token!);
  }
  return { status: res.status, body, retryAfter: res.headers.get('retry-after') };
}

async function endpointUrl(p: SidecarProcess): Promise<string> {
  const started = await p.waitForEvent('sidecar.started');
  return `http://${String(started.credentials_endpoint)}/v1/credentials`;
}

describe('credentials endpoint (sidecar process)', () => {
  it('generates its token file, serves the set on disk, follows a renewal, serves nothing after a deny', async () => {
    const s = await stack({ sts: 'stand-in' });
    const tokenFile = path.join(s.dir, 'endpoint', 'token');
    const p = sidecar(
      {
        ...s.env,
        ...quick,
        STS_SIDECAR_CREDENTIALS_ENDPOINT: '127.0.0.1:0',
        STS_SIDECAR_CREDENTIALS_ENDPOINT_TOKEN_FILE: tokenFile,
      },
      'endpoint',
    );
    const url = await endpointUrl(p);
    await p.waitForEvent('lease.acquired');
    const token = await readFile(tokenFile, 'utf8');
    recordSecret(token);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/); // 256 bits, base64url, no newline
    expect((await stat(tokenFile)).mode & 0o777).toBe(0o440);

    const first = await ask(url, token);
    const disk = await readSet(s.outputDir);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({
      AccessKeyId: disk.accessKey,
      SecretAccessKey: disk.secretKey,
      Token: disk.sessionToken,
      Expiration: disk.expiration,
    });
    expect(first.body.Expiration).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect((await ask(url, undefined)).status).toBe(401);
    expect((await ask(url, token.slice(1))).status).toBe(403);

    const from = p.lines.length;
    p.child.kill('SIGHUP');
    const renewed = await p.waitForEvent('lease.renewed', 10_000, from);
    const second = await ask(url, token);
    expect(second.body.AccessKeyId).toBe(renewed.access_key_id);
    expect(second.body.AccessKeyId).not.toBe(first.body.AccessKeyId);

    await s.writePolicy({ rules: [] });
    p.child.kill('SIGHUP');
    await p.waitForEvent('lease.revoked', 10_000, from);
    const denied = await ask(url, token);
    expect(denied.status).toBe(503);
    expect(denied.retryAfter).toBe('1');
    expect(denied.body.code).toBe('ERR_ENDPOINT_NO_CREDENTIALS');

    // Each refusal reason is logged once, without the token.
    const refusals = p.lines.filter((l) => l.event === 'endpoint.refused');
    expect(refusals.map((l) => l.reason)).toEqual(['token_missing', 'token_invalid', 'no_credentials']);
    expect(JSON.stringify(p.lines)).not.toContain(token.slice(1));
  });

  it('after a restart with the STS down, serves the set already on disk (as the files do)', async () => {
    const s = await stack({ sts: 'stand-in' });
    const env = {
      ...s.env,
      ...quick,
      STS_SIDECAR_CREDENTIALS_ENDPOINT: '127.0.0.1:0',
      STS_SIDECAR_CREDENTIALS_ENDPOINT_TOKEN_FILE: path.join(s.dir, 'endpoint', 'token'),
    };
    const first = sidecar(env, 'endpoint-before-restart');
    await first.waitForEvent('lease.acquired');
    first.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);
    const disk = await readSet(s.outputDir);
    const token = await readFile(path.join(s.dir, 'endpoint', 'token'), 'utf8');
    recordSecret(token);

    s.standIn!.setFault({ kind: 'status', status: 503 });
    const second = sidecar(env, 'endpoint-after-restart');
    const url = await endpointUrl(second);
    await second.waitForEvent('lease.failed');
    const served = await ask(url, token);
    expect(served.status).toBe(200);
    expect(served.body).toEqual({
      AccessKeyId: disk.accessKey,
      SecretAccessKey: disk.secretKey,
      Token: disk.sessionToken,
      Expiration: disk.expiration,
    });
  });

  it('uses an existing token file as is; rejects one with a trailing newline (ERR_CONFIG naming the variable)', async () => {
    const s = await stack({ sts: 'stand-in' });
    const tokenFile = path.join(s.dir, 'given-token');
    const given = 'given-token-from-a-kubernetes-secret';
    await writeFile(tokenFile, given);
    const env = {
      ...s.env,
      ...quick,
      STS_SIDECAR_CREDENTIALS_ENDPOINT: '127.0.0.1:0',
      STS_SIDECAR_CREDENTIALS_ENDPOINT_TOKEN_FILE: tokenFile,
    };
    const p = sidecar(env, 'endpoint-given');
    const url = await endpointUrl(p);
    await p.waitForEvent('lease.acquired');
    expect((await ask(url, given)).status).toBe(200);
    expect(await readFile(tokenFile, 'utf8')).toBe(given);
    p.kill('SIGTERM');
    await p.exited;

    await writeFile(tokenFile, given + '\n');
    const bad = sidecar(env, 'endpoint-newline');
    const { code } = await bad.exited;
    expect(code).toBe(2);
    expect(bad.stderr()).toContain('STS_SIDECAR_CREDENTIALS_ENDPOINT_TOKEN_FILE');
    expect(bad.stderr()).toContain('ERR_CONFIG');
    expect(bad.stderr()).not.toContain(given);
  });

  it('serves nothing for a set with 15 s or less left, though the files hold it', async () => {
    const s = await stack({ sts: 'stand-in', leaseSeconds: 14 });
    const tokenFile = path.join(s.dir, 'endpoint-token');
    const p = sidecar(
      {
        ...s.env,
        ...quick,
        STS_SIDECAR_CREDENTIALS_ENDPOINT: '127.0.0.1:0',
        STS_SIDECAR_CREDENTIALS_ENDPOINT_TOKEN_FILE: tokenFile,
      },
      'endpoint-short',
    );
    const url = await endpointUrl(p);
    await p.waitForEvent('lease.acquired');
    expect(existsSync(path.join(s.outputDir, 'access-key'))).toBe(true);
    expect((await ask(url, await readFile(tokenFile, 'utf8'))).status).toBe(503);
  });
});

describe('rotation notifications (sidecar process)', () => {
  it('signal, POST and command after every new set and removal; secrets never sent', async () => {
    const s = await stack({ sts: 'stand-in' });
    const dir = path.join(s.dir, 'notify');
    await mkdir(dir, { recursive: true });

    // The app: a real process that counts SIGUSR1 and writes its PID file.
    const signals = path.join(dir, 'signals');
    const app = spawn(
      process.execPath,
      [
        '-e',
        `const fs=require('fs');let n=0;process.on('SIGUSR1',()=>fs.writeFileSync(${JSON.stringify(signals)},String(++n)));fs.writeFileSync(${JSON.stringify(path.join(dir, 'app.pid'))},String(process.pid));setInterval(()=>{},1000);`,
      ],
      { stdio: 'ignore' },
    );
    cleanup.push(async () => app.kill('SIGKILL'));
    await expect.poll(() => existsSync(path.join(dir, 'app.pid'))).toBe(true);

    const { posts, url: notifyUrl } = await notifyReceiver();

    const commandOut = path.join(dir, 'command-events');
    const p = sidecar(
      {
        ...s.env,
        ...quick,
        // The notification deadline: room for a node start on a loaded machine.
        STS_SIDECAR_REQUEST_TIMEOUT_SECONDS: '10',
        STS_SIDECAR_NOTIFY_SIGNAL: 'SIGUSR1',
        STS_SIDECAR_NOTIFY_PID_FILE: path.join(dir, 'app.pid'),
        STS_SIDECAR_NOTIFY_URL: notifyUrl,
        STS_SIDECAR_NOTIFY_COMMAND: JSON.stringify([
          process.execPath,
          '-e',
          `process.stdin.pipe(require('fs').createWriteStream(${JSON.stringify(commandOut)},{flags:'a'}))`,
        ]),
      },
      'notify',
    );
    // Each step waits for every channel: while one runs only the newest waiting event is kept, so a
    // slow command start (a loaded machine) would otherwise skip the intermediate event by design.
    const commandLines = async () =>
      existsSync(commandOut) ? (await readFile(commandOut, 'utf8')).trim().split('\n').length : 0;
    const delivered = async (n: number) => {
      await expect.poll(() => posts.length, { timeout: 10_000 }).toBe(n);
      await expect.poll(commandLines, { timeout: 10_000 }).toBe(n);
    };
    await p.waitForEvent('lease.acquired');
    const disk = await readSet(s.outputDir);
    await delivered(1);
    p.child.kill('SIGHUP');
    await p.waitForEvent('lease.renewed');
    await delivered(2);
    await s.writePolicy({ rules: [] });
    p.child.kill('SIGHUP');
    await p.waitForEvent('lease.revoked');
    await delivered(3);

    expect(posts.map((e) => e.event)).toEqual(['lease.acquired', 'lease.renewed', 'lease.revoked']);
    expect(posts[0]).toMatchObject({ access_key_id: disk.accessKey, tenant: 'team-a' });
    await expect.poll(async () => (existsSync(signals) ? readFile(signals, 'utf8') : '0')).toBe('3');
    const sent = JSON.stringify(posts) + (await readFile(commandOut, 'utf8'));
    expect(sent).not.toContain(disk.secretKey);
    expect(sent).not.toContain(disk.sessionToken);
    expect(p.lines.some((l) => l.event === 'notify.failed')).toBe(false);
  });

  it('a failing notification is logged as notify.failed and never stops the loop', async () => {
    const s = await stack({ sts: 'stand-in' });
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const p = sidecar(
      {
        ...s.env,
        ...quick,
        STS_SIDECAR_NOTIFY_URL: `http://127.0.0.1:${port}/nobody`,
        STS_SIDECAR_NOTIFY_COMMAND: JSON.stringify(['/bin/false']),
        STS_SIDECAR_NOTIFY_SIGNAL: 'SIGHUP',
        STS_SIDECAR_NOTIFY_PID_FILE: path.join(s.dir, 'no-such.pid'),
      },
      'notify-failed',
    );
    await p.waitForEvent('lease.acquired');
    for (const channel of ['url', 'command', 'signal']) {
      await p.waitFor(
        (l) => l.event === 'notify.failed' && l.channel === channel,
        5000,
        `notify.failed ${channel}`,
      );
    }
    p.child.kill('SIGHUP');
    await p.waitForEvent('lease.renewed');
    expect(p.lines.some((l) => l.event === 'lease.failed')).toBe(false);
  });

  it('SIGTERM: the removal by wipe-on-exit is still POSTed; a stuck command is killed, exit is bounded', async () => {
    const s = await stack({ sts: 'stand-in' });
    const { posts, url: notifyUrl } = await notifyReceiver();
    const bgPid = path.join(s.dir, 'bg.pid');
    const p = sidecar(
      {
        ...s.env,
        ...quick,
        // Far beyond the test's timeout: only the bounded shutdown drain ends the stuck command.
        STS_SIDECAR_REQUEST_TIMEOUT_SECONDS: '300',
        STS_SIDECAR_WIPE_ON_EXIT: 'true',
        STS_SIDECAR_NOTIFY_URL: notifyUrl,
        // Never exits, and leaves a background process holding its stdout/stderr.
        STS_SIDECAR_NOTIFY_COMMAND: JSON.stringify([
          '/bin/sh',
          '-c',
          `sleep 600 & echo $! > ${bgPid}; exec sleep 600`,
        ]),
      },
      'notify-sigterm',
    );
    await p.waitForEvent('lease.acquired');
    await expect.poll(() => posts.length, { timeout: 5000 }).toBe(1);
    await expect.poll(() => existsSync(bgPid)).toBe(true);
    const bg = Number((await readFile(bgPid, 'utf8')).trim());
    cleanup.push(async () => {
      try {
        process.kill(bg, 'SIGKILL');
      } catch {
        // gone, as it should be
      }
    });
    p.kill('SIGTERM');
    const { code } = await p.exited;
    expect(code).toBe(0);
    expect(posts.map((e) => [e.event, e.reason])).toEqual([
      ['lease.acquired', undefined],
      ['lease.revoked', 'wipe_on_exit'],
    ]);
    const stat = existsSync(`/proc/${bg}/stat`) ? await readFile(`/proc/${bg}/stat`, 'utf8') : '';
    expect(stat === '' || stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z').toBe(true);
  });
});
