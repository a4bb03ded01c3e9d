import { createHook } from 'node:async_hooks';
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { closeQuietly, createQuietServer, listenQuietly } from './quiet-server.ts';

const servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await closeQuietly(s);
});

/** Timers created by `run` that are still pending afterwards (created and never destroyed). */
async function pendingTimersAfter(run: () => Promise<void>): Promise<number> {
  const live = new Map<number, { _onTimeout?: { name?: string } }>();
  const hook = createHook({
    init(id, type, _trigger, resource) {
      if (type === 'Timeout') live.set(id, resource as { _onTimeout?: { name?: string } });
    },
    destroy(id) {
      live.delete(id);
    },
  }).enable();
  try {
    await run();
    await new Promise((r) => setImmediate(r));
  } finally {
    hook.disable();
  }
  // Node's Date-header cache: a one-shot unref'd timer armed when a response is written, never periodic.
  return [...live.values()].filter((t) => t._onTimeout?.name !== 'resetCache').length;
}

const ok: http.RequestListener = (_req, res) => res.end('ok\n');

describe('createQuietServer', () => {
  it('leaves no timer behind once listening (a plain http.Server does: the check can fail)', async () => {
    const quiet = await pendingTimersAfter(async () => {
      const s = createQuietServer(ok);
      servers.push(s);
      await listenQuietly(s, '127.0.0.1', 0);
    });
    expect(quiet).toBe(0);
    const plain = await pendingTimersAfter(async () => {
      const s = http.createServer(ok);
      servers.push(s);
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    });
    expect(plain).toBeGreaterThan(0);
  });

  it('answers requests, and leaves no timer once the connection is closed', async () => {
    const s = createQuietServer(ok);
    servers.push(s);
    const port = await listenQuietly(s, '127.0.0.1', 0);
    const pending = await pendingTimersAfter(async () => {
      const body = await new Promise<string>((resolve, reject) => {
        http
          .get(
            { host: '127.0.0.1', port, path: '/', agent: false, headers: { connection: 'close' } },
            (res) => {
              let b = '';
              res.setEncoding('utf8').on('data', (c: string) => (b += c));
              res.on('end', () => resolve(b));
            },
          )
          .on('error', reject);
      });
      expect(body).toBe('ok\n');
      await new Promise((r) => setTimeout(r, 50));
    });
    // The test's own 50 ms timer has fired; the connection's idle timeout and deadline went with it.
    expect(pending).toBe(0);
  });

  it('cuts a client that trickles its request at the connection deadline', async () => {
    const s = createQuietServer(ok, {
      idleTimeoutMs: 5_000,
      connectionDeadlineMs: 300,
      keepAliveTimeoutMs: 5_000,
    });
    servers.push(s);
    const port = await listenQuietly(s, '127.0.0.1', 0);
    const started = Date.now();
    const closedAfter = await new Promise<number>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => c.write('GET / HTTP/1.1\r\nHost: x\r\n'));
      // One header byte every 100 ms: never idle long enough for the idle timeout.
      const drip = setInterval(() => c.write('X'), 100);
      c.on('error', () => undefined);
      c.on('close', () => {
        clearInterval(drip);
        resolve(Date.now() - started);
      });
    });
    expect(closedAfter).toBeGreaterThanOrEqual(250);
    expect(closedAfter).toBeLessThan(3_000);
  });

  it('closes a connection that stays silent for the idle timeout', async () => {
    const s = createQuietServer(ok, {
      idleTimeoutMs: 200,
      connectionDeadlineMs: 10_000,
      keepAliveTimeoutMs: 5_000,
    });
    servers.push(s);
    const port = await listenQuietly(s, '127.0.0.1', 0);
    const started = Date.now();
    const closedAfter = await new Promise<number>((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.on('error', () => undefined);
      c.on('close', () => resolve(Date.now() - started));
    });
    expect(closedAfter).toBeGreaterThanOrEqual(150);
    expect(closedAfter).toBeLessThan(3_000);
  });
});
