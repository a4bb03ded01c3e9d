import { randomBytes } from 'node:crypto';
import { lstat, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { AssumeRoleWithWebIdentityCommand, STSClient, type Credentials } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureRgw,
  rgwS3Client,
  rgwUsable,
  setupTenant,
  type RgwStack,
  type RgwTenantSetup,
} from './ceph-rgw.ts';
import { startOidcIssuer, type OidcIssuer } from './oidc-issuer.ts';
import { writeProjectedToken } from './projected-token.ts';

const usable = rgwUsable();
const required = process.env.STSTEST_REQUIRE_RGW === '1';
const skipReason = 'reason' in usable ? usable.reason : undefined;
const skip = skipReason !== undefined && !required;
if (skip) console.warn(`[ceph-rgw.test] skipped: ${skipReason}`);

const AUDIENCE = 'sts.sidecar.test';
const BUCKET = 'stack-selftest';

describe('writeProjectedToken (kubelet atomic writer)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'projected-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the first token and rotates it through ..data swaps', async () => {
    await writeProjectedToken(dir, 'token-1');
    expect(await readFile(join(dir, 'token'), 'utf8')).toBe('token-1');
    expect(await readlink(join(dir, 'token'))).toBe('..data/token');
    const first = await readlink(join(dir, '..data'));
    expect(first).toMatch(/^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d+$/);

    await writeProjectedToken(dir, 'token-2');
    expect(await readFile(join(dir, 'token'), 'utf8')).toBe('token-2');
    const second = await readlink(join(dir, '..data'));
    expect(second).not.toBe(first);
    const entries = (await readdir(dir)).sort();
    expect(entries).toEqual(['..data', second, 'token'].sort());
    expect((await lstat(join(dir, 'token'))).isSymbolicLink()).toBe(true);
  });
});

describe.skipIf(skip)(`Ceph RGW as a real STS${skipReason ? ` (RGW unusable: ${skipReason})` : ''}`, () => {
  let stack: RgwStack;
  let issuer: OidcIssuer;
  let tenant: RgwTenantSetup;
  let sts: STSClient;
  let tokenDir: string;

  const assume = async (
    token: string,
    opts: { durationSeconds?: number; policy?: string; timeoutMs?: number } = {},
  ) => {
    const out = await sts.send(
      new AssumeRoleWithWebIdentityCommand({
        RoleArn: tenant.roleArn,
        RoleSessionName: 'stack-selftest', // RGW wants 2..64 characters
        WebIdentityToken: token,
        DurationSeconds: opts.durationSeconds ?? 900,
        Policy: opts.policy,
      }),
      { abortSignal: AbortSignal.timeout(opts.timeoutMs ?? 10_000) },
    );
    expect(out.Credentials).toBeDefined();
    return out.Credentials as Credentials;
  };

  beforeAll(async () => {
    if (skipReason !== undefined) {
      throw new Error(`STSTEST_REQUIRE_RGW=1 but the Ceph RGW stack is unusable: ${skipReason}`);
    }
    const t0 = Date.now();
    [stack, issuer] = await Promise.all([ensureRgw(), startOidcIssuer()]);
    const t1 = Date.now();
    tenant = await setupTenant(stack, {
      issuerUrl: issuer.url,
      thumbprint: issuer.thumbprint,
      audience: AUDIENCE,
      bucket: BUCKET,
      roleName: `stack-selftest-${randomBytes(4).toString('hex')}`,
    });
    console.info(`[ceph-rgw.test] ensureRgw ${t1 - t0} ms, setupTenant ${Date.now() - t1} ms`);
    sts = new STSClient({ endpoint: stack.endpoint, region: stack.region, maxAttempts: 1 });
    tokenDir = await mkdtemp(join(tmpdir(), 'sa-token-'));
  });

  afterAll(async () => {
    sts?.destroy();
    await issuer?.close();
    if (tokenDir) await rm(tokenDir, { recursive: true, force: true });
    // RGW stays up: other test files reuse it (the global setup decides when to stop it).
  });

  it('exchanges a projected token for session-policy-narrowed S3 credentials', async () => {
    await writeProjectedToken(
      tokenDir,
      await issuer.mint({ sub: 'system:serviceaccount:team-a:app', aud: AUDIENCE, tenant: 'team-a' }),
    );
    const token = await readFile(join(tokenDir, 'token'), 'utf8');
    const sessionPolicy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: ['s3:*'], Resource: [`arn:aws:s3:::${BUCKET}/team-a/*`] }],
    });
    const before = issuer.requestCount;
    const t0 = performance.now();
    const creds = await assume(token, { policy: sessionPolicy });
    console.info(`[ceph-rgw.test] AssumeRoleWithWebIdentity ${(performance.now() - t0).toFixed(1)} ms`);
    expect(issuer.requestCount - before).toBeGreaterThanOrEqual(2); // discovery + JWKS on every exchange
    expect(creds.AccessKeyId).toMatch(/^\S{16,}$/);
    expect(creds.SessionToken?.length ?? 0).toBeGreaterThan(100);
    const ttl = (creds.Expiration?.getTime() ?? 0) - Date.now();
    expect(ttl).toBeGreaterThan(800_000);
    expect(ttl).toBeLessThanOrEqual(901_000);

    const s3 = rgwS3Client(stack, {
      accessKeyId: creds.AccessKeyId ?? '',
      secretAccessKey: creds.SecretAccessKey ?? '',
      sessionToken: creds.SessionToken ?? '',
    });
    try {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'team-a/hello.txt', Body: 'hello' }));
      await expect(
        s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'team-b/hello.txt', Body: 'nope' })),
      ).rejects.toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    } finally {
      s3.destroy();
    }
  });

  it('refuses the exchange while the issuer is down, and recovers when it is back', async () => {
    const token = await issuer.mint({ sub: 'system:serviceaccount:team-a:app', aud: AUDIENCE });
    await issuer.pause();
    try {
      const t0 = Date.now();
      await expect(assume(token)).rejects.toMatchObject({
        $metadata: { httpStatusCode: expect.any(Number) as number },
      });
      expect(Date.now() - t0).toBeLessThan(10_000);
    } finally {
      await issuer.resume();
    }
    await expect(assume(token)).resolves.toHaveProperty('AccessKeyId');
  });

  it('refuses tokens for another audience or from the future', async () => {
    await expect(assume(await issuer.mint({ sub: 'x-user', aud: 'someone-else' }))).rejects.toMatchObject({
      $metadata: { httpStatusCode: 403 },
    });
    await expect(
      assume(await issuer.mint({ sub: 'x-user', aud: AUDIENCE }, { iatOffsetSeconds: 30 })),
    ).rejects.toMatchObject({ $metadata: { httpStatusCode: expect.any(Number) as number } });
  });

  it('enforces the role maximum on DurationSeconds', async () => {
    // Other test files lower rgw_sts_min_session_duration while they run; the role maximum (3600 s here)
    // is this file's own, so it can be observed without touching shared settings.
    const token = await issuer.mint({ sub: 'system:serviceaccount:team-a:app', aud: AUDIENCE });
    await expect(assume(token, { durationSeconds: 3601 })).rejects.toMatchObject({
      $metadata: { httpStatusCode: 400 },
    });
  });
});
