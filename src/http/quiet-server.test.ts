import { createHook } from 'node:async_hooks';
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startCredentialsEndpoint } from './credentials-endpoint.ts';
import { startQuietServer, type QuietServer, type QuietServerLimits } from './quiet-server.ts';
import { startHealthServer } from './server.ts';

const servers: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
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

async function quiet(limits?: QuietServerLimits): Promise<QuietServer> {
  const s = await startQuietServer({
    host: '127.0.0.1',
    port: 0,
    handler: ok,
    ...(limits ? { limits } : {}),
  });
  servers.push(s);
  return s;
}

/** The servers the sidecar runs, each started as the daemon starts it, and a plain http.Server. */
const STARTERS: Record<string, () => Promise<{ close(): Promise<void> }>> = {
  'the health server': () =>
    startHealthServer({
      host: '127.0.0.1',
      port: 0,
      view: {
        live: () => ({ ok: true, body: {} }),
        ready: () => ({ ok: true, body: {} }),
        metrics: async () => ({ contentType: 'text/plain', body: '' }),
      },
    }),
  'the credentials endpoint': () =>
    startCredentialsEndpoint({
      host: '127.0.0.1',
      port: 0,
      token: 'test-endpoint-token-0123456789abcdef',
      current: () => undefined,
      now: Date.now,
      onRefused: () => undefined,
    }),
  'a plain http.Server (negative control)': () =>
    new Promise((resolve) => {
      const s = http
        .createServer(ok)
        .listen(0, '127.0.0.1', () => resolve({ close: () => new Promise<void>((r) => s.close(() => r())) }));
    }),
};

describe('no timer while idle', () => {
  it.each(Object.keys(STARTERS))('%s', async (name) => {
    const pending = await pendingTimersAfter(async () => {
      servers.push(await STARTERS[name]!());
    });
    // The check can fail: a listening http.Server starts its 30 s connections-checking interval.
    if (name.includes('negative control')) expect(pending).toBeGreaterThan(0);
    else expect(pending).toBe(0);
  });
});

describe('startQuietServer', () => {
  it('answers requests, and leaves no timer once the connection is closed', async () => {
    const { port } = await quiet();
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

  it('cuts a client that trickles its request at the request deadline', async () => {
    const { port } = await quiet({ idleTimeoutMs: 5_000, requestDeadlineMs: 300, keepAliveTimeoutMs: 5_000 });
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
    const { port } = await quiet({
      idleTimeoutMs: 200,
      requestDeadlineMs: 10_000,
      keepAliveTimeoutMs: 5_000,
    });
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
