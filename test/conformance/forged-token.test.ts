/**
 * A forged web token: HS256, signed with an empty key, `kid` = the audience (MinIO's client id). MinIO
 * trusts HMAC tokens keyed with its client secret under kid = client id; without
 * MINIO_IDENTITY_OPENID_CLIENT_SECRET that key is empty, so anyone can mint a token MinIO accepts (and in
 * claim mode name any policy, consoleAdmin included). Every backend here must refuse it: RGW and
 * SeaweedFS verify with the issuer's RSA keys only; the MinIO stack runs with the client secret set. The
 * [minio] file also starts a MinIO of its own without the secret and shows the forgery working there: the
 * reason docs/backends.md and the chart tell operators to set it.
 */
import { createHmac } from 'node:crypto';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StsError } from '../../src/errors.ts';
import type { AssumeResult } from '../../src/ports.ts';
import type { LocalStack } from '../stack/local-stack.ts';
import { minioS3Client, startOwnMinio } from '../stack/minio.ts';
import { recordSecret } from '../support/secrets.ts';
import { BACKENDS_WITH_MINIO_CLAIM_MODE, dialectOf } from './backends.ts';
import { assumeDirect, outcome } from './support.ts';

const BUCKET = 'conf-forged-token';

/** HS256 over header.payload with an empty key. */
function forge(claims: Record<string, unknown>, kid: string): string {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const signingInput = `${enc({ alg: 'HS256', typ: 'JWT', kid })}.${enc(claims)}`;
  const sig = createHmac('sha256', Buffer.alloc(0)).update(signingInput).digest('base64url');
  const token = `${signingInput}.${sig}`;
  recordSecret(token);
  return token;
}

/** A session policy as broad as the role: whatever the forged token gets, the session policy allows. */
const ALL = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: ['s3:*'], Resource: ['arn:aws:s3:::*'] }],
});

for (const b of BACKENDS_WITH_MINIO_CLAIM_MODE) {
  describe.skipIf(b.skip)(`[${b.name}] a forged HS256 token${b.gate('conformance/forged-token')}`, () => {
    let stack: LocalStack;
    const claims = () => {
      const now = Math.floor(Date.now() / 1000);
      return {
        iss: stack.issuer.url,
        sub: 'system:serviceaccount:team-b:intruder',
        aud: stack.audience,
        iat: now - 1,
        nbf: now - 1,
        exp: now + 600,
        policy: 'consoleAdmin',
      };
    };

    beforeAll(async () => {
      b.assertUsable();
      stack = await b.start({ bucket: BUCKET });
    });
    afterAll(async () => {
      await stack?.close();
    });

    it('signed with an empty key (kid = the audience) is refused', async () => {
      const result = await assumeDirect({
        endpoint: b.endpoint(stack),
        dialect: dialectOf(b.name),
        token: forge(claims(), stack.audience),
        roleArn: stack.env.STS_SIDECAR_ROLE_ARN,
        policy: ALL,
      });
      expect(result).toBeInstanceOf(StsError);
      expect((result as StsError).code).toMatch(/^ERR_STS_(INVALID_TOKEN|ACCESS_DENIED)$/);
    });

    if (b.name === 'minio') {
      it('without MINIO_IDENTITY_OPENID_CLIENT_SECRET, MinIO accepts it: the forged credentials create a bucket', async () => {
        const own = await startOwnMinio({
          mode: 'role',
          issuerUrl: stack.minio!.stack.issuerUrl,
          portOffset: 7,
          withoutClientSecret: true,
        });
        try {
          recordSecret(own.stack.admin.secretAccessKey);
          expect(own.stack.clientSecret).toBe('');
          const result = await assumeDirect({
            endpoint: own.endpoint,
            dialect: 'minio',
            token: forge(claims(), stack.audience),
            roleArn: own.stack.roleArn,
            policy: ALL,
          });
          expect(result).not.toBeInstanceOf(Error);
          const creds = (result as AssumeResult).credentials;
          const s3 = minioS3Client(own.stack, 'role', creds);
          try {
            expect(await outcome(s3.send(new CreateBucketCommand({ Bucket: 'forged-was-here' })))).toBe('ok');
          } finally {
            s3.destroy();
          }
        } finally {
          await own.stop();
        }
      });
    }
  });
}
