import http from 'node:http';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { endpointTokenReloader } from '../adapters/endpoint-token.ts';
import { afterEach, describe, expect, it } from 'vitest';
import type { CredentialSet } from '../domain/credentials.ts';
import type { LeaseEvent } from '../lease-events.ts';
import { createServedCredentials } from '../subscribers/credentials.ts';
import {
  startCredentialsEndpoint,
  type CredentialsEndpoint,
  type EndpointRefusal,
} from './credentials-endpoint.ts';

const TOKEN = 'test-endpoint-token-0123456789abcdef';
const T0 = Date.parse('2026-01-01T00:00:00Z');

function set(n: number, expiresAtMs: number): CredentialSet {
  return {
    accessKeyId: `AKID${n}`,
    secretAccessKey: `secret-${n}-xxxxxxxxxxxxxxxx`,
    sessionToken: `session-${n}-yyyyyyyyyyyyyyyy`,
    expiresAtMs,
  };
}

function get(
  port: number,
  headers: Record<string, string>,
  options: { path?: string; method?: string; host?: string } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: options.path ?? '/v1/credentials',
        method: options.method ?? 'GET',
        headers: { host: options.host ?? `127.0.0.1:${port}`, ...headers },
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const open: CredentialsEndpoint[] = [];
afterEach(async () => {
  for (const e of open.splice(0)) await e.close();
});

async function setup(options: { requestDeadlineMs?: number } = {}) {
  let now = T0;
  const refused: [EndpointRefusal, number, number][] = [];
  const served = createServedCredentials();
  const disk: CredentialSet[] = [];
  const sink = served.wrap({
    prepare: async () => undefined,
    write: async (s) => {
      disk.push(s);
    },
    remove: async () => {
      disk.length = 0;
    },
  });
  const endpoint = await startCredentialsEndpoint({
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    current: served.current,
    now: () => now,
    onRefused: (reason, status, suppressed) => refused.push([reason, status, suppressed]),
    ...options,
  });
  open.push(endpoint);
  return {
    endpoint,
    sink,
    served,
    disk,
    refused,
    advance: (ms: number) => (now += ms),
    report: (e: LeaseEvent) => served.subscriber(e),
  };
}

describe('credentials endpoint', () => {
  it('serves exactly the set last written, in the container-credentials shape', async () => {
    const t = await setup();
    await t.sink.write(set(1, T0 + 3600_000));
    const r = await get(t.endpoint.port, { authorization: TOKEN });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json');
    expect(JSON.parse(r.body)).toEqual({
      AccessKeyId: 'AKID1',
      SecretAccessKey: t.disk[0]!.secretAccessKey,
      Token: t.disk[0]!.sessionToken,
      Expiration: '2026-01-01T01:00:00Z',
    });
    await t.sink.write(set(2, T0 + 7200_000));
    expect(JSON.parse((await get(t.endpoint.port, { authorization: TOKEN })).body).AccessKeyId).toBe('AKID2');
    for (const host of ['localhost', `localhost:${t.endpoint.port}`, '[::1]:1234', '127.0.0.1']) {
      expect((await get(t.endpoint.port, { authorization: TOKEN }, { host })).status, host).toBe(200);
    }
  });

  it('refuses: no token 401, wrong token 403, foreign Host 403, other paths 404, other methods 405', async () => {
    const t = await setup();
    await t.sink.write(set(1, T0 + 3600_000));
    const cases: [Parameters<typeof get>, number, string][] = [
      [[t.endpoint.port, {}], 401, 'ERR_ENDPOINT_TOKEN_MISSING'],
      [[t.endpoint.port, { authorization: TOKEN + 'x' }], 403, 'ERR_ENDPOINT_TOKEN_INVALID'],
      [[t.endpoint.port, { authorization: `Bearer ${TOKEN}` }], 403, 'ERR_ENDPOINT_TOKEN_INVALID'],
      [
        [t.endpoint.port, { authorization: TOKEN }, { host: 'attacker.example:80' }],
        403,
        'ERR_ENDPOINT_HOST_FORBIDDEN',
      ],
      [
        [t.endpoint.port, { authorization: TOKEN }, { host: '169.254.170.2' }],
        403,
        'ERR_ENDPOINT_HOST_FORBIDDEN',
      ],
      [
        [t.endpoint.port, { authorization: TOKEN }, { path: '/v1/credentials/../x' }],
        404,
        'ERR_ENDPOINT_NOT_FOUND',
      ],
      [[t.endpoint.port, { authorization: TOKEN }, { method: 'POST' }], 405, 'ERR_ENDPOINT_METHOD'],
    ];
    for (const [args, status, code] of cases) {
      const r = await get(...args);
      expect(r.status, code).toBe(status);
      expect(JSON.parse(r.body)).toEqual({ code, message: expect.any(String) as string });
      expect(r.body).not.toContain('secret-1');
    }
  });

  it('logs each refusal reason once a minute, counting the quiet ones', async () => {
    const t = await setup();
    for (let i = 0; i < 3; i++) await get(t.endpoint.port, { authorization: 'wrong-token' });
    await get(t.endpoint.port, {});
    expect(t.refused).toEqual([
      ['token_invalid', 403, 0],
      ['token_missing', 401, 0],
    ]);
    t.advance(60_000);
    await get(t.endpoint.port, { authorization: 'wrong-token' });
    expect(t.refused.at(-1)).toEqual(['token_invalid', 403, 2]);
  });

  it('503 with Retry-After before the first set, after a deny, after expiry, and with 15 s or less left', async () => {
    const t = await setup();
    const ask = () => get(t.endpoint.port, { authorization: TOKEN });
    const before = await ask();
    expect(before.status).toBe(503);
    expect(before.headers['retry-after']).toBe('1');
    expect(JSON.parse(before.body).code).toBe('ERR_ENDPOINT_NO_CREDENTIALS');

    // After a deny: nothing, even while the files' removal has not happened (or failed).
    await t.sink.write(set(1, T0 + 3600_000));
    expect((await ask()).status).toBe(200);
    t.report({
      event: 'lease.denied',
      issuer: undefined,
      subject: 's',
      tenant: 't',
      bucket: 'b',
      prefix: '',
      backend: 'generic',
      attempt: 2,
      code: 'ERR_POLICY_DENIED',
      decision_id: undefined,
      reasons: [],
      message: 'denied',
      next_attempt: '',
    });
    expect((await ask()).status).toBe(503);

    // After the removal of an expired set.
    await t.sink.write(set(2, T0 + 60_000));
    expect((await ask()).status).toBe(200);
    await t.sink.remove();
    expect((await ask()).status).toBe(503);

    // The 15 s rule: 15.001 s left is served, 15 s is not; and past expiry nothing is served even
    // before the loop has removed the set.
    await t.sink.write(set(3, T0 + 120_000));
    t.advance(120_000 - 15_001);
    expect((await ask()).status).toBe(200);
    t.advance(1);
    expect((await ask()).status).toBe(503);
    t.advance(60_000);
    expect((await ask()).status).toBe(503);
  });

  it('a set that went live although a later write step failed is the one served', async () => {
    const served = createServedCredentials();
    const sink = served.wrap({
      prepare: async () => undefined,
      write: async () => {
        throw Object.assign(new Error('fsync failed'), { committed: true });
      },
      remove: async () => undefined,
    });
    await expect(sink.write(set(7, T0 + 3600_000))).rejects.toThrow('fsync failed');
    expect(served.current(T0)?.accessKeyId).toBe('AKID7');
  });

  it('refuses a request with a body unread (413) and closes that connection', async () => {
    const t = await setup();
    await t.sink.write(set(1, T0 + 3600_000));
    const r = await new Promise<{ status: number; body: string; connection: string | undefined }>(
      (resolve, reject) => {
        const req = http.request(
          {
            host: '127.0.0.1',
            port: t.endpoint.port,
            path: '/v1/credentials',
            method: 'GET',
            headers: { host: '127.0.0.1', authorization: TOKEN, 'content-length': String(64 * 1024 * 1024) },
            agent: false,
          },
          (res) => {
            let body = '';
            res.setEncoding('utf8').on('data', (c: string) => (body += c));
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }),
            );
          },
        );
        req.on('error', reject);
        req.write('x'.repeat(1024));
      },
    );
    expect(r.status).toBe(413);
    expect(r.connection).toBe('close');
    expect(JSON.parse(r.body).code).toBe('ERR_ENDPOINT_BODY');
    expect(r.body).not.toContain('secret-1');
    expect((await get(t.endpoint.port, { authorization: TOKEN })).status).toBe(200);
  });

  it('caps header size and keeps serving afterwards', async () => {
    const t = await setup();
    await t.sink.write(set(1, T0 + 3600_000));
    const r = await get(t.endpoint.port, { authorization: TOKEN, 'x-pad': 'a'.repeat(8000) }).catch(
      (err: Error) => ({ status: -1, body: err.message, headers: {} }),
    );
    expect([400, 431, -1]).toContain(r.status);
    expect((await get(t.endpoint.port, { authorization: TOKEN })).status).toBe(200);
  });

  it('cuts a connection that trickles its request past the deadline, and serves afterwards', async () => {
    const t = await setup({ requestDeadlineMs: 600 });
    await t.sink.write(set(1, T0 + 3600_000));
    const request = `GET /v1/credentials HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${TOKEN}\r\n\r\n`;
    const socket = net.connect(t.endpoint.port, '127.0.0.1');
    let sent = 0;
    let answer = '';
    socket.setEncoding('utf8').on('data', (c: string) => (answer += c));
    socket.on('error', () => undefined);
    // One byte every 50 ms: far inside the 10 s idle timeout, so only the request deadline can cut it.
    const trickle = setInterval(() => {
      if (sent < request.length && !socket.destroyed) socket.write(request[sent++]!);
    }, 50);
    await new Promise((r) => socket.once('close', r));
    clearInterval(trickle);
    expect(sent).toBeLessThan(request.length);
    expect(answer).toBe('');
    expect((await get(t.endpoint.port, { authorization: TOKEN })).status).toBe(200);
  });

  it('keeps a connection that sends complete requests, restarting the deadline after each response', async () => {
    const t = await setup({ requestDeadlineMs: 600 });
    await t.sink.write(set(1, T0 + 3600_000));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const ports: number[] = [];
    for (let i = 0; i < 4; i++) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.get(
          {
            host: '127.0.0.1',
            port: t.endpoint.port,
            path: '/v1/credentials',
            headers: { authorization: TOKEN },
            agent,
          },
          (res) => {
            ports.push(req.socket!.localPort!);
            res.resume().on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
      });
      expect(status).toBe(200);
      await new Promise((r) => setTimeout(r, 400)); // over the deadline in total, under it each time
    }
    expect(new Set(ports).size).toBe(1);
    agent.destroy();
  });

  it('holds at most 64 connections; the request deadline frees slots held by silent clients', async () => {
    const t = await setup({ requestDeadlineMs: 1000 });
    await t.sink.write(set(1, T0 + 3600_000));
    const silent: net.Socket[] = [];
    for (let i = 0; i < 64; i++) {
      const s = net.connect(t.endpoint.port, '127.0.0.1');
      s.on('error', () => undefined);
      await new Promise((r) => s.once('connect', r));
      silent.push(s);
    }
    // Let the listener accept all 64 before the 65th arrives.
    await new Promise((r) => setTimeout(r, 100));
    const refused = await get(t.endpoint.port, { authorization: TOKEN }).then(
      (r) => r.status,
      () => 'refused',
    );
    expect(refused).toBe('refused');
    await Promise.all(silent.map((s) => new Promise((r) => (s.destroyed ? r(0) : s.once('close', r)))));
    expect((await get(t.endpoint.port, { authorization: TOKEN })).status).toBe(200);
  });

  it('picks up a rotated token file (Kubernetes Secret swap) on the first refused request', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'endpoint-token-'));
    try {
      // The Secret volume layout: token -> ..data/token, ..data -> a generation directory, swapped whole.
      const generation = async (name: string, token: string) => {
        await mkdir(path.join(dir, name));
        await writeFile(path.join(dir, name, 'token'), token);
        await symlink(name, path.join(dir, '..data_tmp'));
        await rename(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
      };
      const OLD = 'old-endpoint-token-0123456789';
      const NEW = 'new-endpoint-token-9876543210';
      await generation('..gen1', OLD);
      await symlink('..data/token', path.join(dir, 'token'));
      const file = path.join(dir, 'token');
      const served = createServedCredentials();
      const endpoint = await startCredentialsEndpoint({
        host: '127.0.0.1',
        port: 0,
        token: OLD,
        reloadToken: endpointTokenReloader(file),
        current: served.current,
        now: () => T0,
        onRefused: () => undefined,
      });
      open.push(endpoint);
      await served
        .wrap({ prepare: async () => undefined, write: async () => undefined, remove: async () => undefined })
        .write(set(1, T0 + 3600_000));
      expect((await get(endpoint.port, { authorization: OLD })).status).toBe(200);
      expect((await get(endpoint.port, { authorization: NEW })).status).toBe(403);

      await generation('..gen2', NEW);
      expect((await get(endpoint.port, { authorization: NEW })).status).toBe(200);
      expect((await get(endpoint.port, { authorization: OLD })).status).toBe(403);

      // A broken update keeps the token in force.
      await writeFile(path.join(dir, '..gen2', 'token'), 'short\n');
      expect((await get(endpoint.port, { authorization: 'x'.repeat(20) })).status).toBe(403);
      expect((await get(endpoint.port, { authorization: NEW })).status).toBe(200);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
