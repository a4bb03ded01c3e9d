/**
 * A real OIDC issuer on loopback for tests: RS256 key made with jose, a self-signed X.509 certificate for it
 * (built here with node:crypto and a tiny DER encoder, no openssl binary needed), a discovery document and a
 * JWKS whose first (signing) key carries x5c/kid/alg/use, as Ceph RGW 16.2 demands. Every answer carries
 * `Connection: close` so RGW never reuses a stale keep-alive connection to the issuer.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  KeyObject,
  randomBytes,
  sign as cryptoSign,
  X509Certificate,
} from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';

export interface OidcIssuer {
  /** Issuer URL exactly as in `iss`, e.g. http://127.0.0.1:40123/issuer (no trailing slash). */
  readonly url: string;
  /** SHA-1 of the x5c certificate DER, lower-case hex. */
  readonly thumbprint: string;
  /** HTTP requests served so far (discovery + jwks + anything else). */
  readonly requestCount: number;
  mint(
    claims: { sub: string; aud: string | string[]; tenant?: string; [k: string]: unknown },
    opts?: { ttlSeconds?: number; iatOffsetSeconds?: number; nbfOffsetSeconds?: number; alg?: 'RS256' },
  ): Promise<string>;
  /**
   * Switch to a fresh signing key with a new `kid`: later mints use it, and the JWKS (once the issuer
   * listens) lists it first, the previous key after it. Works while paused: the new key is only
   * published when the issuer is back, as in a rotation during an outage.
   */
  rotateKey(): Promise<void>;
  /** Stop listening (simulates an issuer outage: connections are refused). */
  pause(): Promise<void>;
  /** Listen again on the same port. */
  resume(): Promise<void>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------------
// Minimal DER encoder, enough for one self-signed certificate.

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}
const seq = (...c: Buffer[]): Buffer => tlv(0x30, ...c);
const set = (...c: Buffer[]): Buffer => tlv(0x31, ...c);
function derInt(value: Buffer | number): Buffer {
  let b = typeof value === 'number' ? Buffer.from([value]) : value;
  let i = 0;
  while (i < b.length - 1 && b[i] === 0 && ((b[i + 1] ?? 0) & 0x80) === 0) i++;
  b = b.subarray(i);
  if (((b[0] ?? 0) & 0x80) !== 0) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}
function derOid(oid: string): Buffer {
  const parts = oid.split('.').map(Number);
  const [a = 0, b = 0, ...rest] = parts;
  const out: number[] = [a * 40 + b];
  for (const p of rest) {
    const chunk: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}
const derNull = (): Buffer => Buffer.from([0x05, 0x00]);
const derUtf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
const derBitString = (b: Buffer): Buffer => tlv(0x03, Buffer.from([0]), b);
function derTime(d: Date): Buffer {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const tail = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  const y = d.getUTCFullYear();
  return y >= 1950 && y < 2050
    ? tlv(0x17, Buffer.from(`${p(y % 100)}${tail}`, 'ascii'))
    : tlv(0x18, Buffer.from(`${p(y, 4)}${tail}`, 'ascii'));
}

/** A v3 self-signed certificate (sha256WithRSAEncryption) for the given RSA key pair, as DER. */
function selfSignedCertDer(privateKey: KeyObject, publicKey: KeyObject, commonName: string): Buffer {
  const sha256WithRsa = seq(derOid('1.2.840.113549.1.1.11'), derNull());
  const name = seq(set(seq(derOid('2.5.4.3'), derUtf8(commonName))));
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  const now = Date.now();
  const validity = seq(derTime(new Date(now - 3_600_000)), derTime(new Date(now + 10 * 365 * 86_400_000)));
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const basicConstraints = seq(derOid('2.5.29.19'), tlv(0x04, seq())); // cA FALSE
  const tbs = seq(
    tlv(0xa0, derInt(2)),
    derInt(serial),
    sha256WithRsa,
    name,
    validity,
    name,
    spki,
    tlv(0xa3, seq(basicConstraints)),
  );
  const signature = cryptoSign('sha256', tbs, privateKey);
  return seq(tbs, sha256WithRsa, derBitString(signature));
}

// ---------------------------------------------------------------------------------------------------------

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ port, host, exclusive: true });
  });
}

function stopListening(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

interface SigningKey {
  readonly privateKey: KeyObject;
  readonly kid: string;
  /** The public JWK as published: kid/alg/use and the x5c certificate. */
  readonly jwk: JWK;
  readonly thumbprint: string;
}

/** A signing key (the given private JWK, or a fresh RSA key) with its self-signed certificate. */
async function signingKey(privateJwk: JWK | undefined, fixedKid?: string): Promise<SigningKey> {
  let privateKey: KeyObject;
  let publicKey: KeyObject;
  if (privateJwk) {
    privateKey = createPrivateKey({ key: privateJwk as import('node:crypto').JsonWebKey, format: 'jwk' });
    publicKey = createPublicKey(privateKey);
  } else {
    const pair = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
    privateKey = KeyObject.from(pair.privateKey);
    publicKey = KeyObject.from(pair.publicKey);
  }
  const certDer = selfSignedCertDer(privateKey, publicKey, 'sts-sidecar test issuer');
  // Sanity: the certificate parses and verifies with its own key.
  if (!new X509Certificate(certDer).verify(publicKey))
    throw new Error('self-signed certificate does not verify');
  const thumbprint = createHash('sha1').update(certDer).digest('hex');
  const baseJwk = await exportJWK(publicKey);
  const kid = fixedKid ?? (await calculateJwkThumbprint(baseJwk));
  const jwk: JWK = { ...baseJwk, kid, alg: 'RS256', use: 'sig', x5c: [certDer.toString('base64')] };
  return { privateKey, kid, jwk, thumbprint };
}

export async function startOidcIssuer(opts?: {
  host?: string;
  port?: number;
  path?: string;
  /**
   * A private RSA JWK to sign with instead of a fresh key (a fixed-port issuer whose key outlives the
   * process, see test/stack/seaweedfs-issuer.ts). The `kid` is the JWK thumbprint unless `kid` is given.
   */
  privateJwk?: JWK;
  /** The `kid` to publish with privateJwk (the key's owner chose it, e.g. the kube-apiserver's). */
  kid?: string;
}): Promise<OidcIssuer> {
  const host = opts?.host ?? '127.0.0.1';
  const rawPath = opts?.path ?? '/issuer';
  const path = rawPath === '' || rawPath === '/' ? '' : `/${rawPath.replace(/^\/+|\/+$/g, '')}`;

  let key = await signingKey(opts?.privateJwk, opts?.kid);
  let previousJwk: JWK | undefined;

  let url = '';
  let requestCount = 0;
  let discovery = '';
  const jwks = (): string => JSON.stringify({ keys: previousJwk ? [key.jwk, previousJwk] : [key.jwk] });

  const send = (res: ServerResponse, status: number, body: string, type = 'application/json'): void => {
    res.writeHead(status, {
      'Content-Type': type,
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-store',
      Connection: 'close',
    });
    res.end(body);
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requestCount++;
    const reqPath = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return send(res, 405, '{"error":"method not allowed"}');
    if (reqPath === `${path}/.well-known/openid-configuration`) return send(res, 200, discovery);
    if (reqPath === `${path}/openid/v1/jwks` || reqPath === `${path}/jwks`) return send(res, 200, jwks());
    return send(res, 404, '{"error":"not found"}');
  });
  server.keepAliveTimeout = 1;

  await listen(server, opts?.port ?? 0, host);
  const port = (server.address() as AddressInfo).port;
  const hostPart = host.includes(':') ? `[${host}]` : host;
  url = `http://${hostPart}:${port}${path}`;
  discovery = JSON.stringify({
    issuer: url,
    jwks_uri: `${url}/openid/v1/jwks`,
    response_types_supported: ['id_token'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
    claims_supported: ['sub', 'aud', 'iss', 'iat', 'exp', 'nbf'],
  });

  let closed = false;
  return {
    url,
    get thumbprint() {
      return key.thumbprint;
    },
    get requestCount() {
      return requestCount;
    },
    async mint(claims, mintOpts) {
      const alg = mintOpts?.alg ?? 'RS256';
      // RGW has zero clock leeway: default iat/nbf one second in the past.
      const now = Math.floor(Date.now() / 1000);
      const iat = now - 1 + (mintOpts?.iatOffsetSeconds ?? 0);
      const nbf = now - 1 + (mintOpts?.nbfOffsetSeconds ?? mintOpts?.iatOffsetSeconds ?? 0);
      const exp = now + (mintOpts?.ttlSeconds ?? 3600);
      const payload = { iss: url, iat, nbf, exp, jti: randomBytes(12).toString('hex'), ...claims };
      return new SignJWT(payload).setProtectedHeader({ alg, kid: key.kid, typ: 'JWT' }).sign(key.privateKey);
    },
    async rotateKey() {
      const next = await signingKey(undefined);
      previousJwk = key.jwk;
      key = next;
    },
    async pause() {
      await stopListening(server);
    },
    async resume() {
      if (closed) throw new Error('issuer is closed');
      if (server.listening) return;
      // The port was released by pause(); retry briefly in case something grabbed it meanwhile.
      for (let attempt = 0; ; attempt++) {
        try {
          await listen(server, port, host);
          return;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 20) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    },
    async close() {
      closed = true;
      await stopListening(server);
    },
  };
}
