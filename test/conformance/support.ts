/**
 * Shared pieces of the tests that run the built sidecar against the real Ceph RGW: the skip/require gate,
 * reading the credential set back from disk, S3 clients on those credentials, a minimal allow-everything
 * flex-auth (for tests that must keep the policy server out of the picture), and a cross-process guard
 * for lowering `rgw_sts_min_session_duration`.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { STSClient } from '@aws-sdk/client-sts';
import { StsCredentialIssuer, type StsDialect } from '../../src/adapters/sts.ts';
import type { AssumeResult } from '../../src/ports.ts';
import { recordSecret } from '../support/secrets.ts';
import { DEFAULT_STACK_DIR, rgwS3Client, rgwUsable, setRgwConfig, type RgwStack } from '../stack/ceph-rgw.ts';
import { readSet, type OnDiskSet } from '../support/credentials.ts';

const usable = rgwUsable();
/** Why the RGW tests cannot run here, or undefined when they can. */
export const rgwSkipReason: string | undefined = 'reason' in usable ? usable.reason : undefined;
/** CI sets STSTEST_REQUIRE_RGW=1: then an unusable RGW fails the run instead of skipping it. */
export const requireRgw = process.env.STSTEST_REQUIRE_RGW === '1';
/** True when the suite must be skipped (RGW unusable and not required). */
export const skipRgw = rgwSkipReason !== undefined && !requireRgw;

/** For describe titles and a one-line skip notice. */
export function rgwGate(file: string): string {
  if (skipRgw) console.warn(`[${file}] skipped: ${rgwSkipReason}`);
  return rgwSkipReason ? ` (RGW unusable: ${rgwSkipReason})` : '';
}

/** Call first in beforeAll: with STSTEST_REQUIRE_RGW=1 an unusable RGW is a failure, not a skip. */
export function assertRgwUsable(): void {
  if (rgwSkipReason !== undefined) {
    throw new Error(`STSTEST_REQUIRE_RGW=1 but the Ceph RGW stack is unusable: ${rgwSkipReason}`);
  }
}

/** A credential set as the tests use it; read the documented way (resolve `..data` once). */
export interface DiskSet {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: string;
  json: OnDiskSet['json'];
}

/** Reads the set the sidecar wrote (test/support/credentials.ts records the secrets for the leak scan). */
export async function readDiskSet(outputDir: string): Promise<DiskSet> {
  const s = await readSet(outputDir);
  return {
    accessKeyId: s.accessKey,
    secretAccessKey: s.secretKey,
    sessionToken: s.sessionToken,
    expiration: s.expiration,
    json: s.json,
  };
}

export function s3For(
  stack: RgwStack,
  set: Pick<DiskSet, 'accessKeyId' | 'secretAccessKey' | 'sessionToken'>,
): S3Client {
  return rgwS3Client(stack, {
    accessKeyId: set.accessKeyId,
    secretAccessKey: set.secretAccessKey,
    sessionToken: set.sessionToken,
  });
}

/** Runs an S3 call; resolves to 'ok' or the error name and HTTP status, never throws. */
export async function outcome(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return 'ok';
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    return `${e.name ?? 'error'} ${e.$metadata?.httpStatusCode ?? '-'}`;
  }
}

export interface AllowAllPolicy {
  readonly url: string;
  readonly requestCount: number;
  close(): Promise<void>;
}

/**
 * A flex-auth that allows whatever is asked without looking at the token. For tests about the STS's own
 * answers: the local stack's decision server verifies tokens against the same issuer (so an issuer outage
 * or a foreign token would be denied there, before the STS is ever asked).
 */
export async function startAllowAllPolicy(): Promise<AllowAllPolicy> {
  let requestCount = 0;
  const server = createServer((req, res) => {
    requestCount++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as {
        actions?: string[];
        ttl_seconds?: number;
      };
      res.writeHead(200, { 'content-type': 'application/json', connection: 'close' });
      res.end(
        JSON.stringify({
          decision: 'allow',
          decision_id: `allow-all-${randomUUID()}`,
          actions: body.actions,
          ttl_seconds: body.ttl_seconds,
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1/decisions`,
    get requestCount() {
      return requestCount;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const MIN_DURATION_USERS = path.join(DEFAULT_STACK_DIR, 'min-duration-users');

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Lowers `rgw_sts_min_session_duration` for short-lease tests. Test files run in parallel processes and the
 * setting is global, so each user leaves a marker file; the returned release() restores the default (900)
 * only when no other live process still holds a marker.
 */
export async function lowerRgwMinDuration(stack: RgwStack, seconds: number): Promise<() => Promise<void>> {
  mkdirSync(MIN_DURATION_USERS, { recursive: true });
  const marker = path.join(MIN_DURATION_USERS, `${process.pid}-${randomUUID()}`);
  writeFileSync(marker, String(seconds));
  await setRgwConfig(stack, 'rgw_sts_min_session_duration', String(seconds));
  return async () => {
    rmSync(marker, { force: true });
    const others = readdirSync(MIN_DURATION_USERS).filter((f) => {
      const pid = Number(f.split('-')[0]);
      if (Number.isInteger(pid) && pidAlive(pid)) return true;
      rmSync(path.join(MIN_DURATION_USERS, f), { force: true });
      return false;
    });
    if (others.length === 0) await setRgwConfig(stack, 'rgw_sts_min_session_duration', '900');
  };
}

/** Environment overrides for a fast, quiet daemon in tests. */
export const FAST_RETRY_ENV: Record<string, string> = {
  STS_SIDECAR_BACKOFF_INITIAL_SECONDS: '0.5',
  STS_SIDECAR_BACKOFF_MAX_SECONDS: '2',
};

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A session policy for direct calls: GetObject in the bucket. */
export function readPolicy(bucket: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: ['s3:GetObject'], Resource: [`arn:aws:s3:::${bucket}/*`] }],
  });
}

/**
 * One AssumeRoleWithWebIdentity through the sidecar's STS adapter, for what the sidecar itself never sends
 * (an expired token, a forged one, a duration outside its limits). Resolves to the result or the error;
 * records the token and any credentials for the secret scan.
 */
export async function assumeDirect(o: {
  endpoint: string;
  dialect: StsDialect;
  token: string;
  roleArn: string | undefined;
  policy: string;
  durationSeconds?: number;
  region?: string;
}): Promise<AssumeResult | unknown> {
  recordSecret(o.token);
  const client = new STSClient({ region: o.region ?? 'us-east-1', endpoint: o.endpoint, maxAttempts: 1 });
  try {
    const result = await new StsCredentialIssuer({ client, timeoutMs: 5000, dialect: o.dialect }).assume({
      token: o.token,
      roleArn: o.roleArn,
      sessionName: 'direct-call',
      durationSeconds: o.durationSeconds ?? 900,
      policy: o.policy,
    });
    recordSecret(result.credentials.secretAccessKey);
    recordSecret(result.credentials.sessionToken);
    return result;
  } catch (err) {
    return err;
  } finally {
    client.destroy();
  }
}
