/**
 * The notifier against real processes (/bin/sh, sleep, yes) and a real loopback HTTP server.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { forLease, type LeaseEvent } from '../lease-events.ts';
import { createLogger } from '../logger.ts';
import { createNotifier, notifyChannels, type NotifierOptions } from './notifier.ts';

const cleanup: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});

function logged() {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: {
      write: (s: string) => {
        raw.push(s);
        lines.push(JSON.parse(s) as Record<string, unknown>);
      },
    },
  });
  return { logger, lines, raw };
}

function notifier(options: Omit<NotifierOptions, 'logger' | 'kill'> & Partial<NotifierOptions>) {
  const log = logged();
  const n = createNotifier({ logger: log.logger, kill: (pid, sig) => process.kill(pid, sig), ...options });
  cleanup.push(() => n.close(100));
  return { n, ...log };
}

const revoked = (n: number): LeaseEvent => ({
  event: 'lease.revoked',
  tenant: 'team-a',
  reason: 'denied',
  access_key_id: `AK${n}`,
});

/** Alive and not a zombie (an orphan may wait to be reaped by a PID 1 that never does). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function tmp(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'notifier-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A command whose background child holds stdout/stderr and writes its PID to `pidFile`. */
function withBackgroundChild(pidFile: string, then: string): string[] {
  return ['/bin/sh', '-c', `sleep 60 & echo $! > ${pidFile}; ${then}`];
}

async function pidFrom(file: string): Promise<number> {
  await expect.poll(() => existsSync(file) && readFileSync(file, 'utf8').trim() !== '').toBe(true);
  const pid = Number((await readFile(file, 'utf8')).trim());
  cleanup.push(() => {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  return pid;
}

interface Received {
  readonly event: string;
  readonly access_key_id: string;
  readonly lease?: string;
}

/** A real receiver; `hold` keeps requests unanswered until released. */
async function receiver(options: { status?: number; hold?: boolean } = {}) {
  const got: Received[] = [];
  const aborted: string[] = [];
  const held: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const e = JSON.parse(body) as Received;
      got.push(e);
      res.on('close', () => {
        if (!res.writableFinished) aborted.push(e.access_key_id);
      });
      const answer = () => {
        res.statusCode = options.status ?? 204;
        res.end();
      };
      if (options.hold) held.push(answer);
      else answer();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.push(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/rotated`;
  return { url, got, aborted, release: () => held.splice(0).forEach((a) => a()) };
}

describe('notifier', () => {
  it('lists its channels in sending order', () => {
    expect(notifyChannels({ notifyUrl: 'x', notifyCommand: ['y'], notifySignal: 'SIGHUP' })).toEqual([
      'signal',
      'url',
      'command',
    ]);
    expect(notifyChannels({})).toEqual([]);
  });

  it('idle() resolves at once with nothing in flight, and once every notification finished', async () => {
    const r = await receiver();
    const { n, lines } = notifier({ url: r.url, timeoutMs: 5000 });
    await n.idle();
    n.subscriber(revoked(1));
    n.subscriber({ event: 'loop.sleep', at_ms: 1, until_ms: 2 }); // not notified
    await n.idle();
    expect(r.got.map((e) => e.access_key_id)).toEqual(['AK1']);
    expect(lines.filter((l) => l.event === 'notify.sent')).toHaveLength(1);
  });

  it('keeps only the newest waiting event while one is in flight', async () => {
    const r = await receiver({ hold: true });
    const { n } = notifier({ url: r.url, timeoutMs: 10_000 });
    n.subscriber(revoked(1));
    await expect.poll(() => r.got.length).toBe(1);
    for (const k of [2, 3, 4]) n.subscriber(revoked(k));
    r.release();
    await expect.poll(() => r.got.length).toBe(2);
    r.release();
    await n.idle();
    expect(r.got.map((e) => e.access_key_id)).toEqual(['AK1', 'AK4']);
  });

  it('names the lease, and keeps the newest waiting event of each lease (named leases)', async () => {
    const r = await receiver({ hold: true });
    const { n } = notifier({ url: r.url, timeoutMs: 10_000 });
    const artifacts = forLease('artifacts', n.subscriber);
    const datasets = forLease('datasets', n.subscriber);
    artifacts(revoked(1));
    await expect.poll(() => r.got.length).toBe(1);
    for (const [report, k] of [
      [datasets, 2],
      [artifacts, 3],
      [artifacts, 4],
    ] as const)
      report(revoked(k));
    for (const count of [2, 3]) {
      r.release();
      await expect.poll(() => r.got.length).toBe(count);
    }
    r.release();
    await n.idle();
    expect(r.got.map((e) => [e.lease, e.access_key_id])).toEqual([
      ['artifacts', 'AK1'],
      ['datasets', 'AK2'],
      ['artifacts', 'AK4'],
    ]);
  });

  it('logs a failed POST by category, status or error code, never the URL', async () => {
    const r = await receiver({ status: 500 });
    const secretish = 'q-s3cr3t-in-query';
    const a = notifier({ url: `${r.url}?sig=${secretish}`, timeoutMs: 5000 });
    a.n.subscriber(revoked(1));
    await a.n.idle();
    expect(a.lines.find((l) => l.event === 'notify.failed')).toMatchObject({
      channel: 'url',
      reason: 'http_status',
      http_status: 500,
    });

    const closed = http.createServer();
    await new Promise<void>((res) => closed.listen(0, '127.0.0.1', res));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((res) => closed.close(res));
    const b = notifier({ url: `http://127.0.0.1:${port}/x?sig=${secretish}`, timeoutMs: 5000 });
    b.n.subscriber(revoked(2));
    await b.n.idle();
    expect(b.lines.find((l) => l.event === 'notify.failed')).toMatchObject({
      channel: 'url',
      reason: 'request_failed',
      error_code: 'ECONNREFUSED',
    });
    for (const text of [...a.raw, ...b.raw]) {
      expect(text).not.toContain(secretish);
      expect(text).not.toContain('127.0.0.1:');
    }
  });

  it('kills the command and its whole process group at the deadline', async () => {
    const dir = await tmp();
    const pidFile = path.join(dir, 'bg.pid');
    const { n, lines } = notifier({ command: withBackgroundChild(pidFile, 'sleep 60'), timeoutMs: 500 });
    n.subscriber(revoked(1));
    const bg = await pidFrom(pidFile);
    await n.idle();
    expect(lines.find((l) => l.event === 'notify.failed')).toMatchObject({
      channel: 'command',
      reason: 'timeout',
    });
    await expect.poll(() => alive(bg)).toBe(false);
  });

  it('finishes when the command exits although a background process still holds its output', async () => {
    const dir = await tmp();
    const pidFile = path.join(dir, 'bg.pid');
    // A deadline far beyond the test's own timeout: only finishing on exit lets idle() resolve.
    const { n, lines } = notifier({ command: withBackgroundChild(pidFile, 'exit 0'), timeoutMs: 600_000 });
    n.subscriber(revoked(1));
    const bg = await pidFrom(pidFile);
    await n.idle();
    expect(alive(bg)).toBe(true); // still holding the pipes: 'close' would never have come
    expect(lines.find((l) => l.event === 'notify.sent')).toMatchObject({ channel: 'command' });
  });

  it('kills a command whose output goes over the cap', async () => {
    const { n, lines } = notifier({ command: ['/usr/bin/yes'], timeoutMs: 600_000 });
    n.subscriber(revoked(1));
    await n.idle();
    expect(lines.find((l) => l.event === 'notify.failed')).toMatchObject({
      channel: 'command',
      reason: 'output_over_limit',
    });
  });

  it('close() lets a quick notification finish, then aborts what is still in flight', async () => {
    const quick = await receiver();
    const q = notifier({ url: quick.url, timeoutMs: 5000 });
    q.n.subscriber(revoked(1));
    await q.n.close(5000);
    expect(quick.got.map((e) => e.access_key_id)).toEqual(['AK1']);
    q.n.subscriber(revoked(2)); // after close: never sent
    await q.n.idle();
    expect(quick.got).toHaveLength(1);

    const stuck = await receiver({ hold: true });
    const dir = await tmp();
    const pidFile = path.join(dir, 'bg.pid');
    const s = notifier({
      url: stuck.url,
      command: withBackgroundChild(pidFile, 'sleep 60'),
      timeoutMs: 600_000,
    });
    s.n.subscriber(revoked(3));
    await expect.poll(() => stuck.got.length).toBe(1);
    const bg = await pidFrom(pidFile);
    await s.n.close(200);
    await s.n.idle();
    await expect.poll(() => stuck.aborted).toEqual(['AK3']);
    await expect.poll(() => alive(bg)).toBe(false);
    expect(s.lines.filter((l) => l.event === 'notify.failed').map((l) => [l.channel, l.reason])).toEqual(
      expect.arrayContaining([
        ['url', 'aborted'],
        ['command', 'aborted'],
      ]),
    );
  });
});
