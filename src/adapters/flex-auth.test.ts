import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DecisionRequest } from '../ports.ts';
import { FlexAuthClient } from './flex-auth.ts';
import { createHttpTransport } from './http-transport.ts';

let server: Server;
let url: string;
let reply: (
  res: import('node:http').ServerResponse,
  body: string,
  headers: import('node:http').IncomingHttpHeaders,
) => void;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => reply(res, body, req.headers));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/decisions`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const request: DecisionRequest = {
  protected_system: 'object-storage',
  tenant: 't',
  resource: { bucket: 'b', prefix: 'p/' },
  actions: ['read'],
  ttl_seconds: 3600,
};
const client = () =>
  new FlexAuthClient({ url, transport: createHttpTransport({ maxResponseBytes: 1024 }), timeoutMs: 500 });
const answer = (status: number, body: string) => (reply = (res) => res.writeHead(status).end(body));

describe('FlexAuthClient', () => {
  it('sends the bearer token and the request JSON', async () => {
    let seen: { body: string; auth: string | undefined } | undefined;
    reply = (res, body, headers) => {
      seen = { body, auth: headers.authorization };
      res.writeHead(200).end(JSON.stringify({ decision: 'allow', decision_id: 'd1' }));
    };
    await expect(client().decide(request, 'tok.en.x', undefined)).resolves.toEqual({
      decisionId: 'd1',
      ttlSeconds: undefined,
      actions: undefined,
      obligations: undefined,
    });
    expect(seen).toEqual({ body: JSON.stringify(request), auth: 'Bearer tok.en.x' });
  });

  it.each([200, 403])('deny on HTTP %i is a PolicyDeniedError with reasons', async (status) => {
    answer(status, JSON.stringify({ decision: 'deny', decision_id: 'd2', reasons: ['no_matching_rule'] }));
    await expect(client().decide(request, 't')).rejects.toMatchObject({
      code: 'ERR_POLICY_DENIED',
      decisionId: 'd2',
      reasons: ['no_matching_rule'],
    });
  });

  it.each([
    ['503', 503, '{}', 'ERR_POLICY_UNAVAILABLE'],
    ['401', 401, JSON.stringify({ decision: 'deny' }), 'ERR_POLICY_UNAVAILABLE'],
    ['not JSON', 200, '<html>', 'ERR_POLICY_INVALID_RESPONSE'],
    ['wrong shape', 200, JSON.stringify({ decision: 'maybe' }), 'ERR_POLICY_INVALID_RESPONSE'],
    ['allow without decision id', 200, JSON.stringify({ decision: 'allow' }), 'ERR_POLICY_INVALID_RESPONSE'],
    [
      'huge body',
      200,
      JSON.stringify({ decision: 'allow', decision_id: 'x'.repeat(5000) }),
      'ERR_POLICY_UNAVAILABLE',
    ],
  ])('%s -> %s (never a deny)', async (_name, status, body, code) => {
    answer(status, body);
    await expect(client().decide(request, 't')).rejects.toMatchObject({
      code: code === 'ERR_POLICY_UNAVAILABLE' ? code : code,
    });
  });

  it('a slow drip hits the deadline', async () => {
    reply = (res) => {
      res.writeHead(200);
      const timer = setInterval(() => res.write(' '), 50);
      res.on('close', () => clearInterval(timer));
    };
    const t0 = Date.now();
    await expect(client().decide(request, 't')).rejects.toMatchObject({
      code: 'ERR_POLICY_UNAVAILABLE',
      message: expect.stringContaining('timeout'),
    });
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('an unreachable server is unavailable and names the origin only', async () => {
    const c = new FlexAuthClient({
      url: 'http://127.0.0.1:9/v1?sig=secret123',
      transport: createHttpTransport({ maxResponseBytes: 1024 }),
      timeoutMs: 500,
    });
    const err = await c.decide(request, 't').catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'ERR_POLICY_UNAVAILABLE' });
    expect((err as Error).message).toContain('http://127.0.0.1:9');
    expect((err as Error).message).not.toContain('secret123');
  });

  it('a call aborted by shutdown is ERR_ABORTED, not an outage', async () => {
    reply = () => undefined; // never answers
    const controller = new AbortController();
    const pending = client().decide(request, 't', controller.signal);
    setTimeout(() => controller.abort(), 50);
    await expect(pending).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });
});
