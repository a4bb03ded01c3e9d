/**
 * STS STAND-IN: a small AssumeRoleWithWebIdentity server of our own, for what the real Ceph RGW cannot
 * be made to do on demand (slow answers, 5xx, malformed XML, each AWS error code, very short leases)
 * and for machines without RGW. It still verifies the web identity token for real (signature against
 * the issuer's JWKS, issuer, audience, expiry) and speaks the AWS Query protocol the SDK expects.
 * It is not the product's STS and nothing in src/ knows about it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { serveLoopback } from './loopback-server.ts';

export type StsFault =
  | { kind: 'status'; status: number }
  | { kind: 'delay'; ms: number }
  | { kind: 'malformed' }
  | { kind: 'error'; status: number; code: string; message?: string; s3Style?: boolean }
  | { kind: 'expired' }
  | { kind: 'missing'; field: 'AccessKeyId' | 'SecretAccessKey' | 'SessionToken' | 'Expiration' }
  | { kind: 'huge' }
  | { kind: 'reset' };

export interface StsCall {
  readonly roleArn: string | undefined;
  readonly sessionName: string | undefined;
  readonly durationSeconds: number | undefined;
  readonly policy: string | undefined;
  readonly outcome: 'issued' | 'error' | 'fault';
  readonly accessKeyId?: string;
  /** The `jti` of the web token that was exchanged (tells the tokens apart; not a secret). */
  readonly tokenId?: string;
  /** The Expiration it returned, to the millisecond (the sidecar's logs round it to the second). */
  readonly expiresAtMs?: number;
}

export interface IssuedCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
}

export interface StsStandIn {
  readonly endpoint: string;
  readonly calls: readonly StsCall[];
  /** Every secret it handed out, so tests can scan logs for them. */
  readonly issued: readonly IssuedCredentials[];
  setFault(fault: StsFault | undefined): void;
  /** Lease length handed out regardless of DurationSeconds (short-lease tests); undefined = honour it. */
  setLeaseSeconds(seconds: number | undefined): void;
  close(): Promise<void>;
}

export async function startStsStandIn(options: {
  issuerUrl: string;
  audience: string;
  host?: string;
  port?: number;
  minDurationSeconds?: number;
  maxDurationSeconds?: number;
  leaseSeconds?: number;
  /** End every lease at the web token's exp when that comes first (what SeaweedFS up to 4.44 did). */
  capAtTokenExp?: boolean;
}): Promise<StsStandIn> {
  const jwks = createRemoteJWKSet(new URL(`${options.issuerUrl}/jwks`), {
    cooldownDuration: 0,
    cacheMaxAge: 0,
  });
  const minDuration = options.minDurationSeconds ?? 900;
  const maxDuration = options.maxDurationSeconds ?? 3600;
  let fault: StsFault | undefined;
  let leaseSeconds = options.leaseSeconds;
  const calls: StsCall[] = [];
  const issued: IssuedCredentials[] = [];

  const xmlError = (res: ServerResponse, status: number, code: string, message: string, s3Style = false) => {
    const requestId = randomUUID();
    res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId, connection: 'close' });
    res.end(
      s3Style
        ? `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message><RequestId>${requestId}</RequestId></Error>`
        : `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
    );
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    const durationRaw = form.get('DurationSeconds');
    const call = {
      roleArn: form.get('RoleArn') ?? undefined,
      sessionName: form.get('RoleSessionName') ?? undefined,
      durationSeconds: durationRaw === null ? undefined : Number(durationRaw),
      policy: form.get('Policy') ?? undefined,
    };
    const f = fault;
    if (f) {
      calls.push({ ...call, outcome: 'fault' });
      switch (f.kind) {
        case 'status':
          res.writeHead(f.status, { connection: 'close' });
          return res.end('<html>injected</html>');
        case 'delay':
          await new Promise((r) => setTimeout(r, f.ms));
          break;
        case 'malformed':
          res.writeHead(200, { 'content-type': 'text/xml', connection: 'close' });
          return res.end(
            '<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>',
          );
        case 'error':
          return xmlError(res, f.status, f.code, f.message ?? 'injected', f.s3Style);
        case 'huge':
          res.writeHead(200, { 'content-type': 'text/xml', connection: 'close' });
          return res.end(
            `<AssumeRoleWithWebIdentityResponse>${'<x>junk</x>'.repeat(200_000)}</AssumeRoleWithWebIdentityResponse>`,
          );
        case 'reset':
          req.socket.destroy();
          return;
        default:
          break;
      }
    }
    if (form.get('Action') !== 'AssumeRoleWithWebIdentity')
      return xmlError(res, 400, 'InvalidAction', 'unsupported action');
    const token = form.get('WebIdentityToken') ?? '';
    let sub: string;
    let tokenId: string | undefined;
    let tokenExpMs = Number.POSITIVE_INFINITY;
    try {
      const { payload } = await jwtVerify(token, jwks, {
        issuer: options.issuerUrl,
        audience: options.audience,
      });
      sub = payload.sub ?? '';
      tokenId = payload.jti;
      if (options.capAtTokenExp && payload.exp !== undefined) tokenExpMs = payload.exp * 1000;
    } catch (err) {
      calls.push({ ...call, outcome: 'error' });
      const expired = (err as { code?: string }).code === 'ERR_JWT_EXPIRED';
      return xmlError(res, 400, expired ? 'ExpiredTokenException' : 'InvalidIdentityToken', 'token rejected');
    }
    const duration = call.durationSeconds ?? 3600;
    if (!Number.isInteger(duration) || duration < minDuration || duration > maxDuration) {
      calls.push({ ...call, outcome: 'error' });
      return xmlError(
        res,
        400,
        'ValidationError',
        `The requested DurationSeconds exceeds the allowed range ${minDuration}..${maxDuration}`,
      );
    }
    if (call.policy !== undefined) {
      try {
        JSON.parse(call.policy);
      } catch {
        calls.push({ ...call, outcome: 'error' });
        return xmlError(res, 400, 'MalformedPolicyDocument', 'policy is not JSON');
      }
    }
    const creds = {
      accessKeyId: `ASIA${randomBytes(8).toString('hex').toUpperCase()}`,
      secretAccessKey: randomBytes(30).toString('base64url'),
      sessionToken: randomBytes(200).toString('base64url'),
    };
    const expiresAt =
      f?.kind === 'expired'
        ? Date.now() - 60_000
        : Math.min(Date.now() + (leaseSeconds ?? duration) * 1000, tokenExpMs);
    issued.push(creds);
    calls.push({
      ...call,
      outcome: 'issued',
      accessKeyId: creds.accessKeyId,
      tokenId,
      expiresAtMs: expiresAt,
    });
    const field = (name: string, value: string) =>
      f?.kind === 'missing' && f.field === name ? '' : `<${name}>${value}</${name}>`;
    const requestId = randomUUID();
    res.writeHead(200, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId, connection: 'close' });
    res.end(
      `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult>` +
        `<SubjectFromWebIdentityToken>${sub}</SubjectFromWebIdentityToken>` +
        `<AssumedRoleUser><Arn>arn:aws:sts::000000000000:assumed-role/stand-in/${call.sessionName ?? ''}</Arn><AssumedRoleId>AROA:${call.sessionName ?? ''}</AssumedRoleId></AssumedRoleUser>` +
        `<Credentials>${field('AccessKeyId', creds.accessKeyId)}${field('SecretAccessKey', creds.secretAccessKey)}${field('SessionToken', creds.sessionToken)}${field('Expiration', new Date(expiresAt).toISOString())}</Credentials>` +
        `<Audience>${options.audience}</Audience></AssumeRoleWithWebIdentityResult>` +
        `<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>`,
    );
  };

  const server = await serveLoopback(handle, options);
  return {
    endpoint: server.origin,
    calls,
    issued,
    setFault: (f) => {
      fault = f;
    },
    setLeaseSeconds: (s) => {
      leaseSeconds = s;
    },
    close: () => server.close(),
  };
}
