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
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StsCredentialIssuer } from '../../src/adapters/sts.ts';
import type { LocalStack } from '../stack/local-stack.ts';
import { startOidcIssuer, type OidcIssuer } from '../stack/oidc-issuer.ts';
import { writeProjectedToken } from '../stack/projected-token.ts';
import { recordSecret } from '../support/secrets.ts';
import { startSidecar } from '../support/sidecar-process.ts';
import { BACKENDS, type BackendName } from './backends.ts';
import { FAST_RETRY_ENV, startAllowAllPolicy, type AllowAllPolicy } from './support.ts';

const BUCKET = 'conf-sts-errors';

interface Expected {
  code: string;
  http_status: number;
  stsCode: string;
}
const EXPECTED: Record<BackendName, Record<'audience' | 'issuer' | 'role' | 'expired', Expected>> = {
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
};

for (const b of BACKENDS) {
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

      it(`a token for another audience: ${expected.audience.code}, HTTP ${expected.audience.http_status}`, async () => {
        const failed = await firstFailure(await stack.issuer.mint({ sub: subject, aud: 'someone-else' }));
        expect(failed).toMatchObject({
          code: expected.audience.code,
          http_status: expected.audience.http_status,
          retryable: true,
        });
        expect(String(failed.message)).toContain(expected.audience.stsCode);
        // The STS's request id, for a support ticket: RGW's `tx...` transaction id; SeaweedFS (4.53) answers
        // X-Amz-Request-Id and <RequestId> with 24 upper-case hex digits.
        expect(String(failed.sts_request_id)).toMatch(
          b.name === 'ceph-rgw' ? /^tx\S+$/ : /^[0-9A-F]{16,32}$/,
        );
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

      it(`a RoleArn of a role that does not exist: ${expected.role.code}, HTTP ${expected.role.http_status}`, async () => {
        const failed = await firstFailure(await stack.issuer.mint({ sub: subject, aud: stack.audience }), {
          STS_SIDECAR_ROLE_ARN:
            b.name === 'seaweedfs' ? 'arn:aws:iam::role/does-not-exist' : 'arn:aws:iam:::role/does-not-exist',
        });
        expect(failed).toMatchObject({ code: expected.role.code, http_status: expected.role.http_status });
        expect(String(failed.message)).toContain(expected.role.stsCode);
      });

      it(`an expired web token (sent by the STS adapter; the sidecar refuses it locally): ${expected.expired.code}`, async () => {
        const token = await stack.issuer.mint({ sub: subject, aud: stack.audience }, { ttlSeconds: -30 });
        recordSecret(token);
        const client = new STSClient({
          region: stack.env.STS_SIDECAR_STS_REGION ?? 'us-east-1',
          endpoint: stack.env.STS_SIDECAR_STS_ENDPOINT,
          maxAttempts: 1,
        });
        try {
          const issuer = new StsCredentialIssuer({
            client,
            timeoutMs: 5000,
            dialect: b.name === 'seaweedfs' ? 'seaweedfs' : 'aws',
          });
          const err = await issuer
            .assume({
              token,
              roleArn: stack.env.STS_SIDECAR_ROLE_ARN,
              sessionName: 'expired-token',
              durationSeconds: 900,
              policy: JSON.stringify({
                Version: '2012-10-17',
                Statement: [
                  { Effect: 'Allow', Action: ['s3:GetObject'], Resource: [`arn:aws:s3:::${BUCKET}/*`] },
                ],
              }),
            })
            .catch((e: unknown) => e);
          expect(err).toMatchObject({
            code: expected.expired.code,
            httpStatus: expected.expired.http_status,
          });
          expect(String((err as Error).message)).toContain(expected.expired.stsCode);
          expect(String((err as Error).message)).not.toContain(token);
        } finally {
          client.destroy();
        }
      });
    },
  );
}
