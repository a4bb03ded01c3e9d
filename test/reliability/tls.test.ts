// Issue 5.7: STS_SIDECAR_CA_FILE makes the sidecar trust a private CA for flex-auth and the STS; without
// it, those servers are refused and the failure says it was TLS.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack, type LocalStack } from '../stack/local-stack.ts';
import { recordSecret } from '../support/secrets.ts';
import { startSidecar } from '../support/sidecar-process.ts';
import { nextEvent, recordIssuedSecrets } from './support/harness.ts';

const run = promisify(execFile);

interface TlsProxy {
  readonly url: string;
  readonly requests: number;
  close(): Promise<void>;
}

/** An HTTPS reverse proxy on 127.0.0.1 in front of a plain-http test server. */
async function startHttpsProxy(target: string, key: string, cert: string): Promise<TlsProxy> {
  const t = new URL(target);
  let requests = 0;
  const server = https.createServer({ key, cert }, (req, res) => {
    requests++;
    const up = http.request(
      {
        host: t.hostname,
        port: t.port,
        path: req.url,
        method: req.method,
        headers: req.headers,
        agent: false,
      },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  // Handshakes the client refuses surface here; they are the point of some tests.
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    get requests() {
      return requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A private CA and two server certificates (one for 127.0.0.1, one for 127.0.0.2), made with openssl. */
async function makePki(dir: string): Promise<{ ca: string; key: string; cert: string; wrongCert: string }> {
  const f = (n: string) => path.join(dir, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=sts-sidecar test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await run('openssl', [
    'req',
    ...ec,
    '-keyout',
    f('server.key'),
    '-out',
    f('server.csr'),
    '-subj',
    '/CN=127.0.0.1',
  ]);
  for (const [name, ip] of [
    ['server', '127.0.0.1'],
    ['wrong', '127.0.0.2'],
  ] as const) {
    await writeFile(f(`${name}.ext`), `subjectAltName=IP:${ip}\nextendedKeyUsage=serverAuth\n`);
    await run('openssl', [
      'x509',
      '-req',
      '-in',
      f('server.csr'),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-out',
      f(`${name}.pem`),
      '-days',
      '2',
      '-extfile',
      f(`${name}.ext`),
    ]);
  }
  return {
    ca: f('ca.pem'),
    key: await readFile(f('server.key'), 'utf8'),
    cert: await readFile(f('server.pem'), 'utf8'),
    wrongCert: await readFile(f('wrong.pem'), 'utf8'),
  };
}

describe('TLS with a private CA', () => {
  let stack: LocalStack;
  let dir: string;
  let pki: Awaited<ReturnType<typeof makePki>>;
  let flex: TlsProxy;
  let sts: TlsProxy;
  let flexWrong: TlsProxy;

  beforeAll(async () => {
    stack = await startLocalStack({ sts: 'stand-in' });
    dir = await mkdtemp(path.join(os.tmpdir(), 'sts-rel-tls-'));
    pki = await makePki(dir);
    flex = await startHttpsProxy(stack.decision.url, pki.key, pki.cert);
    sts = await startHttpsProxy(stack.standIn!.endpoint, pki.key, pki.cert);
    flexWrong = await startHttpsProxy(stack.decision.url, pki.key, pki.wrongCert);
  });
  afterAll(async () => {
    await Promise.allSettled([flex?.close(), sts?.close(), flexWrong?.close()]);
    recordIssuedSecrets(stack);
    await stack?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Starts a daemon and returns its first lease outcome. */
  async function firstOutcome(env: Record<string, string>, label: string) {
    const p = startSidecar({ ...stack.env, STS_SIDECAR_TTL_SECONDS: '3600', ...env }, ['run'], { label });
    try {
      return (await nextEvent(p, ['lease.acquired', 'lease.failed', 'lease.denied'], 0, 20_000)).line;
    } finally {
      p.kill();
      await p.exited;
    }
  }
  const flexUrl = (base: string) => `${base}${new URL(stack.decision.url).pathname}`;

  it('with STS_SIDECAR_CA_FILE, flex-auth and the STS over HTTPS are trusted', async () => {
    const f0 = flex.requests;
    const s0 = sts.requests;
    const line = await firstOutcome(
      {
        STS_SIDECAR_CA_FILE: pki.ca,
        STS_SIDECAR_FLEX_AUTH_URL: flexUrl(flex.url),
        STS_SIDECAR_STS_ENDPOINT: sts.url,
      },
      'tls-trusted',
    );
    expect(line.event, String(line.message)).toBe('lease.acquired');
    expect(flex.requests - f0).toBeGreaterThanOrEqual(1);
    expect(sts.requests - s0).toBeGreaterThanOrEqual(1);
  });

  it('without it, flex-auth over HTTPS is refused: ERR_POLICY_UNAVAILABLE naming the TLS failure', async () => {
    const f0 = flex.requests;
    const line = await firstOutcome(
      { STS_SIDECAR_FLEX_AUTH_URL: flexUrl(flex.url), STS_SIDECAR_STS_ENDPOINT: sts.url },
      'tls-untrusted-flex',
    );
    expect(line.event).toBe('lease.failed');
    expect(line.code).toBe('ERR_POLICY_UNAVAILABLE');
    expect(String(line.message)).toMatch(/certificate|UNABLE_TO_VERIFY|SELF_SIGNED/i);
    expect(flex.requests - f0).toBe(0);
  });

  // BUG F5 (docs/reliability.md): the STS adapter reports a TLS refusal as "STS call failed (Error)".
  it('without it, the STS over HTTPS is refused: ERR_STS_UNREACHABLE naming the TLS failure', async () => {
    const s0 = sts.requests;
    const line = await firstOutcome({ STS_SIDECAR_STS_ENDPOINT: sts.url }, 'tls-untrusted-sts');
    expect(line.event).toBe('lease.failed');
    expect(line.code).toBe('ERR_STS_UNREACHABLE');
    expect(sts.requests - s0).toBe(0);
    expect(String(line.message)).toMatch(/certificate|UNABLE_TO_VERIFY|SELF_SIGNED|TLS/i);
  });

  it('without it, the STS over HTTPS is refused with ERR_STS_UNREACHABLE (the code part, which holds today)', async () => {
    const s0 = sts.requests;
    const line = await firstOutcome({ STS_SIDECAR_STS_ENDPOINT: sts.url }, 'tls-untrusted-sts-code');
    expect(line.event).toBe('lease.failed');
    expect(line.code).toBe('ERR_STS_UNREACHABLE');
    expect(sts.requests - s0).toBe(0);
  });

  it('with the CA but a certificate for another address, the server is refused', async () => {
    const line = await firstOutcome(
      {
        STS_SIDECAR_CA_FILE: pki.ca,
        STS_SIDECAR_FLEX_AUTH_URL: flexUrl(flexWrong.url),
        STS_SIDECAR_STS_ENDPOINT: sts.url,
      },
      'tls-wrong-name',
    );
    expect(line.event).toBe('lease.failed');
    expect(line.code).toBe('ERR_POLICY_UNAVAILABLE');
    expect(String(line.message)).toMatch(/altnames|IP: 127\.0\.0\.1|ERR_TLS_CERT_ALTNAME_INVALID/i);
  });

  describe('the identity provider (STS_SIDECAR_IDP_TOKEN_URL) over HTTPS', () => {
    let idp: https.Server;
    let idpUrl: string;
    let idpRequests = 0;
    let location: http.Server;
    let locationUrl: string;
    let locationRequests = 0;
    let redirect = false;

    beforeAll(async () => {
      // A loopback HTTPS token endpoint with a certificate from the private CA: it answers an IAM Profile
      // token from the stack's issuer (which flex-auth and the STS trust), or a 302 to another server.
      idp = https.createServer({ key: pki.key, cert: pki.cert }, (req, res) => {
        idpRequests++;
        req.resume();
        req.on('end', () => {
          if (redirect) {
            res.writeHead(302, { location: `${locationUrl}/token` }).end();
            return;
          }
          void stack.issuer
            .mint({ sub: stack.subject, aud: stack.audience, tenant: stack.tenant }, { ttlSeconds: 600 })
            .then((token) => {
              recordSecret(token);
              res
                .writeHead(200, { 'content-type': 'application/json' })
                .end(JSON.stringify({ access_token: token, token_type: 'Bearer' }));
            });
        });
      });
      idp.on('tlsClientError', () => undefined);
      await new Promise<void>((resolve) => idp.listen(0, '127.0.0.1', resolve));
      idpUrl = `https://127.0.0.1:${(idp.address() as AddressInfo).port}/realms/sts/protocol/openid-connect/token`;
      location = http.createServer((req, res) => {
        locationRequests++;
        req.resume();
        res.writeHead(500).end();
      });
      await new Promise<void>((resolve) => location.listen(0, '127.0.0.1', resolve));
      locationUrl = `http://127.0.0.1:${(location.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      for (const server of [idp, location]) {
        server?.closeAllConnections();
        await new Promise((resolve) => server?.close(resolve));
      }
    });

    const exchangeEnv = (extra: Record<string, string>) => ({
      STS_SIDECAR_IDENTITY_EXCHANGE: 'client-assertion',
      STS_SIDECAR_IDP_TOKEN_URL: idpUrl,
      ...extra,
    });

    it('with STS_SIDECAR_CA_FILE the exchange runs over HTTPS and the lease is acquired', async () => {
      redirect = false;
      const before = idpRequests;
      const line = await firstOutcome(exchangeEnv({ STS_SIDECAR_CA_FILE: pki.ca }), 'tls-idp-trusted');
      expect(line.event, String(line.message)).toBe('lease.acquired');
      expect(line.tenant).toBe(stack.tenant);
      expect(idpRequests - before).toBeGreaterThanOrEqual(1);
    });

    it('without it, the IdP is refused: ERR_IDP_UNAVAILABLE naming the TLS failure, no request served', async () => {
      redirect = false;
      const before = idpRequests;
      const line = await firstOutcome(exchangeEnv({}), 'tls-idp-untrusted');
      expect(line.event).toBe('lease.failed');
      expect(line.code).toBe('ERR_IDP_UNAVAILABLE');
      expect(String(line.message)).toMatch(/certificate|UNABLE_TO_VERIFY|SELF_SIGNED|TLS/i);
      expect(idpRequests - before).toBe(0);
    });

    it('a 302 answer is not followed (the SA token is never re-sent): ERR_IDP_INVALID_RESPONSE', async () => {
      redirect = true;
      try {
        const before = idpRequests;
        const line = await firstOutcome(exchangeEnv({ STS_SIDECAR_CA_FILE: pki.ca }), 'tls-idp-redirect');
        expect(line.event).toBe('lease.failed');
        expect(line.code).toBe('ERR_IDP_INVALID_RESPONSE');
        expect(idpRequests - before).toBeGreaterThanOrEqual(1);
        expect(locationRequests).toBe(0);
      } finally {
        redirect = false;
      }
    });
  });
});
