/**
 * What each real STS's refusals become in the sidecar's `lease.failed` line (and, for an expired token,
 * which the sidecar itself never sends, in the STS adapter's error). The dialects differ:
 * - RGW 16.2 answers S3-style (`<Error><Code>AccessDenied</Code><Message/>`) with HTTP 403 for every token
 *   or role problem (wrong audience, unregistered issuer, unknown role, expired token) and gives no reason:
 *   ERR_STS_ACCESS_DENIED with http_status 403 is the truthful mapping.
 * - SeaweedFS answers a token it cannot accept (audience, signature, issuer claims) with
 *   InvalidParameterValue (HTTP 400: ERR_STS_INVALID_TOKEN with STS_SIDECAR_BACKEND=seaweedfs), an
 *   expired one with ExpiredTokenException (ERR_STS_EXPIRED_TOKEN), an unknown issuer or role with
 *   AccessDenied (403).
 * - MinIO answers every refusal with InvalidParameterValue (HTTP 400) and the reason in its message; with
 *   STS_SIDECAR_BACKEND=minio the sidecar maps the message: token problems (audience, unknown kid, bad
 *   signature, expired, not yet valid, a missing policy claim) to the token codes, retryable; a RoleArn
 *   MinIO does not know, or a policy it does not define, to ERR_STS_ROLE_UNKNOWN and a refused session
 *   policy to ERR_STS_MALFORMED_POLICY, neither retryable; a DurationSeconds outside 900..31536000 to
 *   ERR_STS_DURATION_OUT_OF_RANGE. MinIO does not check `iss`: a token from a stranger issuer is refused
 *   for its unknown kid. In claim mode an unknown RoleArn is ignored (MinIO's own rule).
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../stack/local-stack.ts';
import { startOidcIssuer, type OidcIssuer } from '../stack/oidc-issuer.ts';
import { writeProjectedToken } from '../stack/projected-token.ts';
import { recordSecret } from '../support/secrets.ts';
import { startSidecar } from '../support/sidecar-process.ts';
import { BACKENDS_WITH_MINIO_CLAIM_MODE, dialectOf, sidecarBackend, type BackendName } from './backends.ts';
import {
  assumeDirect,
  FAST_RETRY_ENV,
  readPolicy,
  startAllowAllPolicy,
  type AllowAllPolicy,
} from './support.ts';

const BUCKET = 'conf-sts-errors';

interface Expected {
  code: string;
  http_status: number;
  stsCode: string;
  retryable?: boolean;
}
/** 'ignored': the backend issues credentials anyway (MinIO's claim mode ignores a RoleArn it does not know). */
type RoleExpectation = Expected | 'ignored';
const minioToken = (code: string): Expected => ({
  code,
  http_status: 400,
  stsCode: 'InvalidParameterValue',
  retryable: true,
});
const MINIO_EXPECTED = {
  audience: minioToken('ERR_STS_INVALID_TOKEN'),
  issuer: minioToken('ERR_STS_INVALID_TOKEN'),
  role: {
    code: 'ERR_STS_ROLE_UNKNOWN',
    http_status: 400,
    stsCode: 'InvalidParameterValue',
    retryable: false,
  } as RoleExpectation,
  expired: minioToken('ERR_STS_EXPIRED_TOKEN'),
};
const EXPECTED: Record<
  BackendName,
  Record<'audience' | 'issuer' | 'expired', Expected> & { role: RoleExpectation }
> = {
  'ceph-rgw': {
    audience: { code: 'ERR_STS_ACCESS_DENIED', http_status: 403, stsCode: 'AccessDenied' },
    issuer: { code: 'ERR_STS_ACCESS_DENIED', http_status: 403, stsCode: 'AccessDenied' },
    role: { code: 'ERR_STS_ACCESS_DENIED', http_status: 403, stsCode: 'AccessDenied' },
    expired: { code: 'ERR_STS_ACCESS_DENIED', http_status: 403, stsCode: 'AccessDenied' },
  },
  seaweedfs: {
    audience: { code: 'ERR_STS_INVALID_TOKEN', http_status: 400, stsCode: 'InvalidParameterValue' },
    issuer: { code: 'ERR_STS_ACCESS_DENIED', http_status: 403, stsCode: 'AccessDenied' },
    role: { code: 'ERR_STS_ACCESS_DENIED', http_status: 403, stsCode: 'AccessDenied' },
    expired: { code: 'ERR_STS_EXPIRED_TOKEN', http_status: 400, stsCode: 'ExpiredTokenException' },
  },
  minio: MINIO_EXPECTED,
  'minio-claim': { ...MINIO_EXPECTED, role: 'ignored' },
};

/** The role ARN form each backend uses, for a role that does not exist. */
const MISSING_ROLE: Record<BackendName, string> = {
  'ceph-rgw': 'arn:aws:iam:::role/does-not-exist',
  seaweedfs: 'arn:aws:iam::role/does-not-exist',
  minio: 'arn:minio:iam:::role/does-not-exist',
  'minio-claim': 'arn:minio:iam:::role/does-not-exist',
};

/** The request id each backend answers with: RGW's `tx...` id; SeaweedFS and MinIO 16-32 hex digits. */
const REQUEST_ID: Record<BackendName, RegExp> = {
  'ceph-rgw': /^tx\S+$/,
  seaweedfs: /^[0-9A-F]{16,32}$/,
  minio: /^[0-9A-F]{16,32}$/,
  'minio-claim': /^[0-9A-F]{16,32}$/,
};

const READ_POLICY = readPolicy(BUCKET);

for (const b of BACKENDS_WITH_MINIO_CLAIM_MODE) {
  describe.skipIf(b.skip)(
    `[${b.name}] STS refusals map to stable codes${b.gate('conformance/sts-errors')}`,
    () => {
      let stack: LocalStack;
      let policy: AllowAllPolicy;
      let stranger: OidcIssuer;
      const expected = EXPECTED[b.name];

      beforeAll(async () => {
        b.assertUsable();
        [stack, policy, stranger] = await Promise.all([
          b.start({ bucket: BUCKET }),
          startAllowAllPolicy(),
          startOidcIssuer({ path: '/not-registered' }),
        ]);
      });
      afterAll(async () => {
        await Promise.allSettled([stack?.close(), policy?.close(), stranger?.close()]);
      });

      /** Writes `token` as the projected token, runs the daemon until its first lease.failed, returns it. */
      const firstFailure = async (token: string, extraEnv: Record<string, string> = {}) => {
        recordSecret(token);
        await writeProjectedToken(path.dirname(stack.tokenFile), token);
        // No local audience check and a policy server that allows anything: the STS alone judges the token.
        const { STS_SIDECAR_TOKEN_AUDIENCE: _aud, ...env } = stack.env;
        const proc = startSidecar(
          { ...env, ...FAST_RETRY_ENV, STS_SIDECAR_FLEX_AUTH_URL: policy.url, ...extraEnv },
          ['run'],
        );
        try {
          const failed = await proc.waitForEvent('lease.failed', 15_000);
          expect(proc.lines.some((l) => l.event === 'lease.acquired')).toBe(false);
          expect(await readdir(stack.outputDir)).not.toContain('access-key');
          return failed;
        } finally {
          proc.kill();
          await proc.exited;
        }
      };

      const subject = 'system:serviceaccount:team-a:artifact-store';

      /** One call through the sidecar's STS adapter, for what the sidecar never sends. */
      const assume = (token: string, overrides: { durationSeconds?: number; policy?: string } = {}) =>
        assumeDirect({
          endpoint: stack.env.STS_SIDECAR_STS_ENDPOINT!,
          region: stack.env.STS_SIDECAR_STS_REGION,
          dialect: dialectOf(b.name),
          token,
          roleArn: stack.env.STS_SIDECAR_ROLE_ARN,
          policy: overrides.policy ?? READ_POLICY,
          durationSeconds: overrides.durationSeconds,
        });

      it(`a token for another audience: ${expected.audience.code}, HTTP ${expected.audience.http_status}`, async () => {
        const failed = await firstFailure(await stack.issuer.mint({ sub: subject, aud: 'someone-else' }));
        expect(failed).toMatchObject({
          code: expected.audience.code,
          http_status: expected.audience.http_status,
          retryable: true,
        });
        expect(String(failed.message)).toContain(expected.audience.stsCode);
        // The STS's request id, for a support ticket: RGW's `tx...` transaction id; SeaweedFS (4.53) answers
        // X-Amz-Request-Id and <RequestId> with 24 upper-case hex digits, MinIO with 16.
        expect(String(failed.sts_request_id)).toMatch(REQUEST_ID[b.name]);
      });

      it(`a token from an issuer the STS does not know: ${expected.issuer.code}, HTTP ${expected.issuer.http_status}`, async () => {
        const failed = await firstFailure(await stranger.mint({ sub: subject, aud: stack.audience }));
        expect(failed).toMatchObject({
          code: expected.issuer.code,
          http_status: expected.issuer.http_status,
          issuer: stranger.url,
        });
        expect(String(failed.message)).toContain(expected.issuer.stsCode);
      });

      const role = expected.role;
      if (role === 'ignored') {
        it('a RoleArn of a role that does not exist is ignored in claim mode: the lease is acquired', async () => {
          const token = await stack.issuer.mint({ sub: subject, aud: stack.audience });
          const result = await assume(token);
          expect(result).toMatchObject({ credentials: { accessKeyId: expect.any(String) } });
        });
      } else {
        it(`a RoleArn of a role that does not exist: ${role.code}, HTTP ${role.http_status}`, async () => {
          const failed = await firstFailure(await stack.issuer.mint({ sub: subject, aud: stack.audience }), {
            STS_SIDECAR_ROLE_ARN: MISSING_ROLE[b.name],
          });
          expect(failed).toMatchObject({ code: role.code, http_status: role.http_status });
          if (role.retryable !== undefined) expect(failed.retryable).toBe(role.retryable);
          expect(String(failed.message)).toContain(role.stsCode);
        });
      }

      it(`an expired web token (sent by the STS adapter; the sidecar refuses it locally): ${expected.expired.code}`, async () => {
        const token = await stack.issuer.mint({ sub: subject, aud: stack.audience }, { ttlSeconds: -30 });
        const err = await assume(token);
        expect(err).toMatchObject({
          code: expected.expired.code,
          httpStatus: expected.expired.http_status,
        });
        expect(String((err as Error).message)).toContain(expected.expired.stsCode);
        expect(String((err as Error).message)).not.toContain(token);
      });

      // MinIO's message tells its refusals apart; the sidecar logs a code and a short reason, never the
      // message itself (it can carry the issuer's internal URL).
      if (sidecarBackend(b.name) === 'minio') {
        const minioReason = /\(InvalidParameterValue, HTTP 400: [a-zA-Z/ ().0-9-]+\)$/;

        it('a token whose signature does not verify: ERR_STS_INVALID_TOKEN, retryable, a short reason only', async () => {
          const good = await stack.issuer.mint({ sub: subject, aud: stack.audience });
          const [h, p, sig] = good.split('.') as [string, string, string];
          const flipped = `${sig.slice(0, 10)}${sig[10] === 'A' ? 'B' : 'A'}${sig.slice(11)}`;
          const failed = await firstFailure(`${h}.${p}.${flipped}`);
          expect(failed).toMatchObject({ code: 'ERR_STS_INVALID_TOKEN', http_status: 400, retryable: true });
          expect(String(failed.message)).toMatch(minioReason);
          expect(String(failed.message)).toContain('token signature');
          expect(String(failed.message)).not.toMatch(/crypto|verification error/);
        });

        it('a token not valid yet (iat/nbf ten minutes ahead): ERR_STS_INVALID_TOKEN', async () => {
          const now = Math.floor(Date.now() / 1000);
          const token = await stack.issuer.mint({
            sub: subject,
            aud: stack.audience,
            iat: now + 600,
            nbf: now + 600,
          });
          const err = await assume(token);
          expect(err).toMatchObject({ code: 'ERR_STS_INVALID_TOKEN', httpStatus: 400, retryable: true });
          expect(String((err as Error).message)).toMatch(minioReason);
        });

        it('DurationSeconds outside 900..31536000: ERR_STS_DURATION_OUT_OF_RANGE (what the step-down keys on)', async () => {
          const token = await stack.issuer.mint({ sub: subject, aud: stack.audience });
          for (const durationSeconds of [899, 31_536_001]) {
            const err = await assume(token, { durationSeconds });
            expect(err).toMatchObject({ code: 'ERR_STS_DURATION_OUT_OF_RANGE', httpStatus: 400 });
            expect(String((err as Error).message)).toMatch(minioReason);
          }
        });

        it('a session policy MinIO refuses (no Version): ERR_STS_MALFORMED_POLICY, not retryable', async () => {
          const token = await stack.issuer.mint({ sub: subject, aud: stack.audience });
          const err = await assume(token, {
            policy: JSON.stringify({ Statement: JSON.parse(READ_POLICY).Statement }),
          });
          expect(err).toMatchObject({ code: 'ERR_STS_MALFORMED_POLICY', httpStatus: 400, retryable: false });
          expect(String((err as Error).message)).toMatch(minioReason);
        });
      }
      if (b.name === 'minio-claim') {
        it('claim mode, a token without the policy claim: ERR_STS_INVALID_TOKEN', async () => {
          const failed = await firstFailure(
            await stack.issuer.mint({ sub: subject, aud: stack.audience, policy: undefined }),
          );
          expect(failed).toMatchObject({ code: 'ERR_STS_INVALID_TOKEN', http_status: 400, retryable: true });
          expect(String(failed.message)).toContain('policy claim');
        });

        it('claim mode, a policy claim naming a policy MinIO does not define: ERR_STS_ROLE_UNKNOWN, not retryable', async () => {
          const failed = await firstFailure(
            await stack.issuer.mint({ sub: subject, aud: stack.audience, policy: 'no-such-policy' }),
          );
          expect(failed).toMatchObject({ code: 'ERR_STS_ROLE_UNKNOWN', http_status: 400, retryable: false });
        });
      }
    },
  );
}
