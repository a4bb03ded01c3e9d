import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDenial } from '../lease-outcome.ts';
import type { Token } from '../ports.ts';
import { createHttpTransport } from './http-transport.ts';
import { IdpIdentityExchange, type ExchangeMode } from './identity-exchange.ts';

let server: Server;
let url: string;
let key: CryptoKey;
let reply: (res: ServerResponse, body: string, headers: IncomingHttpHeaders) => void;

beforeAll(async () => {
  key = (await generateKeyPair('RS256')).privateKey;
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => reply(res, body, req.headers));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/realms/sts/protocol/openid-connect/token`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const SA_RAW =
  'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6dGVhbS1hOmFwcCJ9.c2VjcmV0LXNpZ25hdHVyZQ';
const workload: Token = {
  raw: SA_RAW,
  issuer: 'https://kubernetes.default.svc',
  subject: 'system:serviceaccount:team-a:app',
  audience: ['http://127.0.0.1/realms/sts'],
  tenant: undefined,
  issuedAtMs: undefined,
  expiresAtMs: Date.now() + 600_000,
};

const mint = (claims: Record<string, unknown>, ttlSeconds = 300) =>
  new SignJWT({ sub: 'svc-user-1', aud: ['sts.sidecar.test', 'account'], tenant: 'team-a', ...claims })
    .setProtectedHeader({ alg: 'RS256' })
    .setIssuer('http://127.0.0.1/realms/sts')
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(key);

const exchange = (
  opts: {
    mode?: ExchangeMode;
    timeoutMs?: number;
    maxResponseBytes?: number;
    clientId?: string;
    audience?: string;
    scope?: string;
    tokenAudience?: string;
    tokenUrl?: string;
  } = {},
) =>
  new IdpIdentityExchange({
    mode: opts.mode ?? 'client-assertion',
    tokenUrl: opts.tokenUrl ?? url,
    clientId: opts.clientId,
    audience: opts.audience,
    scope: opts.scope,
    tokenAudience: opts.tokenAudience ?? 'sts.sidecar.test',
    transport: createHttpTransport({ maxResponseBytes: opts.maxResponseBytes ?? 64 * 1024 }),
    timeoutMs: opts.timeoutMs ?? 1000,
    now: Date.now,
  });

const answer = (status: number, body: string) =>
  (reply = (res) => res.writeHead(status, { 'content-type': 'application/json' }).end(body));

/** Every message in the error chain, for the "no secret echoed" checks. */
const messages = (err: unknown): string => {
  const out: string[] = [];
  for (let e = err; e instanceof Error; e = e.cause) out.push(e.message);
  return out.join(' | ');
};

describe('IdpIdentityExchange (real loopback HTTP server)', () => {
  it('client-assertion: sends the SA token as a jwt-bearer client assertion and checks the answer locally', async () => {
    const access = await mint({ principal_type: 'workload', assurance: 'k8s-projected-sa' });
    let seen: URLSearchParams | undefined;
    let headers: IncomingHttpHeaders | undefined;
    reply = (res, body, h) => {
      seen = new URLSearchParams(body);
      headers = h;
      res.writeHead(200).end(JSON.stringify({ access_token: access, token_type: 'Bearer', expires_in: 300 }));
    };
    const token = await exchange().exchange(workload);
    expect(Object.fromEntries(seen ?? [])).toEqual({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: SA_RAW,
    });
    expect(headers?.['content-type']).toBe('application/x-www-form-urlencoded');
    expect(headers?.authorization).toBeUndefined();
    expect(token).toMatchObject({
      raw: access,
      issuer: 'http://127.0.0.1/realms/sts',
      subject: 'svc-user-1',
      tenant: 'team-a',
      principalType: 'workload',
      assurance: 'k8s-projected-sa',
    });
  });

  it('token-exchange: RFC 8693 form, with client_id, audience and scope only when set', async () => {
    const access = await mint({});
    let seen: URLSearchParams | undefined;
    reply = (res, body) => {
      seen = new URLSearchParams(body);
      res.writeHead(200).end(
        JSON.stringify({
          access_token: access,
          issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
          token_type: 'Bearer',
        }),
      );
    };
    await exchange({
      mode: 'token-exchange',
      clientId: 'sidecar',
      audience: 'vending',
      scope: 'a b',
    }).exchange(workload);
    expect(Object.fromEntries(seen ?? [])).toEqual({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: SA_RAW,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      client_id: 'sidecar',
      audience: 'vending',
      scope: 'a b',
    });
  });

  it.each(['invalid_client', 'unauthorized_client', 'invalid_grant'])(
    '%s -> ERR_IDP_REFUSED with the OAuth code, never the description',
    async (error) => {
      answer(
        error === 'invalid_client' ? 401 : 400,
        JSON.stringify({ error, error_description: `assertion ${SA_RAW} was not accepted` }),
      );
      const err = await exchange()
        .exchange(workload)
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_IDP_REFUSED', oauthError: error });
      expect(messages(err)).toContain(error);
      expect(messages(err)).not.toContain('was not accepted');
      expect(messages(err)).not.toContain(SA_RAW);
    },
  );

  it('an error code that is not an OAuth word is not repeated, and is not a deny', async () => {
    answer(400, JSON.stringify({ error: `bad ${SA_RAW}` }));
    const err = await exchange()
      .exchange(workload)
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_IDP_INVALID_RESPONSE', oauthError: 'unrecognised_error' });
    expect(isDenial(err)).toBe(false);
    expect(messages(err)).not.toContain(SA_RAW);
  });

  it.each([
    ['invalid_request', 400],
    ['unsupported_grant_type', 400],
    ['invalid_scope', 400],
    ['access_denied', 403],
    ['some_future_error', 400],
  ])(
    '%s (HTTP %s) is a bad request or IdP setup, not a verdict: ERR_IDP_INVALID_RESPONSE, set kept',
    async (error, status) => {
      answer(status, JSON.stringify({ error, error_description: `subject ${SA_RAW} is not welcome` }));
      const err = await exchange()
        .exchange(workload)
        .catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: 'ERR_IDP_INVALID_RESPONSE',
        oauthError: error,
        httpStatus: status,
        retryable: true,
      });
      expect(isDenial(err)).toBe(false);
      expect(messages(err)).toContain(error);
      expect(messages(err)).not.toContain('not welcome');
      expect(messages(err)).not.toContain(SA_RAW);
    },
  );

  it('the refusal codes are a deny for the loop', async () => {
    answer(401, JSON.stringify({ error: 'invalid_client' }));
    const err = await exchange()
      .exchange(workload)
      .catch((e: unknown) => e);
    expect(isDenial(err)).toBe(true);
  });

  it('a token_type from the IdP is never repeated in the error', async () => {
    const odd = `DPoP-${SA_RAW.slice(0, 20)}`;
    answer(200, JSON.stringify({ access_token: await mint({}), token_type: odd }));
    const err = await exchange()
      .exchange(workload)
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_IDP_INVALID_RESPONSE' });
    expect(messages(err)).not.toContain('DPoP');
    expect(messages(err)).toContain('token_type is not Bearer');
  });

  it.each([
    ['500', 500, '{"error":"server_error"}', 'ERR_IDP_UNAVAILABLE'],
    ['503 HTML', 503, '<html>down</html>', 'ERR_IDP_UNAVAILABLE'],
    ['429', 429, '{}', 'ERR_IDP_UNAVAILABLE'],
    ['not JSON', 200, `<html>${SA_RAW}</html>`, 'ERR_IDP_INVALID_RESPONSE'],
    ['no access_token', 200, '{"token_type":"Bearer"}', 'ERR_IDP_INVALID_RESPONSE'],
    ['a 4xx without an OAuth error', 404, '{"message":"nope"}', 'ERR_IDP_INVALID_RESPONSE'],
    ['not a bearer token', 200, '{"access_token":"a.b.c","token_type":"DPoP"}', 'ERR_IDP_INVALID_RESPONSE'],
    ['an access token that is not a JWT', 200, '{"access_token":"opaque"}', 'ERR_TOKEN_MALFORMED'],
  ])('%s -> %s (retried, never a deny)', async (_name, status, body, code) => {
    answer(status, body);
    const err = await exchange()
      .exchange(workload)
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code, retryable: true });
    expect(messages(err)).not.toContain(SA_RAW);
  });

  it('an oversized answer -> ERR_IDP_INVALID_RESPONSE', async () => {
    answer(200, JSON.stringify({ access_token: 'x'.repeat(4000) }));
    await expect(exchange({ maxResponseBytes: 1024 }).exchange(workload)).rejects.toMatchObject({
      code: 'ERR_IDP_INVALID_RESPONSE',
    });
  });

  it('slow past the deadline -> ERR_IDP_UNAVAILABLE within the deadline', async () => {
    reply = (res) => setTimeout(() => res.writeHead(200).end('{}'), 2000).unref();
    const t0 = Date.now();
    await expect(exchange({ timeoutMs: 200 }).exchange(workload)).rejects.toMatchObject({
      code: 'ERR_IDP_UNAVAILABLE',
      message: expect.stringContaining('timeout') as string,
    });
    expect(Date.now() - t0).toBeLessThan(1500);
  });

  it('unreachable -> ERR_IDP_UNAVAILABLE', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    await expect(
      exchange({ tokenUrl: `http://127.0.0.1:${port}/token` }).exchange(workload),
    ).rejects.toMatchObject({
      code: 'ERR_IDP_UNAVAILABLE',
      message: expect.stringContaining('ECONNREFUSED') as string,
    });
  });

  it('the caller aborting -> ERR_ABORTED', async () => {
    reply = (res) => setTimeout(() => res.writeHead(200).end('{}'), 2000).unref();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await expect(exchange().exchange(workload, ac.signal)).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });

  it.each([[['team-a']], [null], [42]])(
    'an exchanged token whose tenant claim is %j is ERR_TOKEN_TENANT_MISSING (a deny), never coerced',
    async (tenant) => {
      answer(200, JSON.stringify({ access_token: await mint({ tenant }) }));
      const err = await exchange()
        .exchange(workload)
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_TOKEN_TENANT_MISSING' });
      expect(isDenial(err)).toBe(true);
      expect(messages(err)).toMatch(/^the access token in the identity provider answer/);
      expect(messages(err)).not.toContain('token file');
    },
  );

  it('the exchanged token goes through the token-file checks: aud, exp', async () => {
    answer(200, JSON.stringify({ access_token: await mint({ aud: 'account' }) }));
    await expect(exchange().exchange(workload)).rejects.toMatchObject({ code: 'ERR_TOKEN_AUDIENCE' });
    answer(200, JSON.stringify({ access_token: await mint({}, -10) }));
    await expect(exchange().exchange(workload)).rejects.toMatchObject({ code: 'ERR_TOKEN_EXPIRED' });
  });
});
