/**
 * An OIDC issuer outage while the daemon runs. RGW 16.2 fetches the issuer's discovery document and JWKS on
 * every AssumeRoleWithWebIdentity (no cache), so a forced refresh fails; the set on disk must stay as it is,
 * and the next attempt after the issuer is back must succeed. The policy server here allows without
 * looking at the token, so only RGW depends on the issuer.
 *
 * The set on disk has most of its life left, so the retries are spread over a part of that life
 * (src/domain/schedule.ts): the test checks the announced retry time and drives the attempts with SIGHUP,
 * as an operator would after fixing the issuer.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VARIABLES } from '../../src/config/schema.ts';
import { startLocalStack, type LocalStack } from '../stack/local-stack.ts';
import { startSidecar } from '../support/sidecar-process.ts';
import {
  assertRgwUsable,
  FAST_RETRY_ENV,
  outcome,
  readDiskSet,
  rgwGate,
  s3For,
  skipRgw,
  startAllowAllPolicy,
  type AllowAllPolicy,
} from './support.ts';

const BUCKET = 'rgw-issuer-outage';
const gate = rgwGate('rgw/issuer-outage');

describe.skipIf(skipRgw)(`issuer outage against RGW${gate}`, () => {
  let stack: LocalStack;
  let policy: AllowAllPolicy;

  beforeAll(async () => {
    assertRgwUsable();
    [stack, policy] = await Promise.all([
      startLocalStack({ sts: 'ceph-rgw', bucket: BUCKET }),
      startAllowAllPolicy(),
    ]);
  });
  afterAll(async () => {
    await stack?.issuer.resume().catch(() => undefined);
    await Promise.allSettled([stack?.close(), policy?.close()]);
  });

  it('a refresh during the outage fails with ERR_STS_ACCESS_DENIED and keeps the set; after it, the lease is renewed', async () => {
    const proc = startSidecar({ ...stack.env, ...FAST_RETRY_ENV, STS_SIDECAR_FLEX_AUTH_URL: policy.url }, [
      'run',
    ]);
    try {
      const acquired = await proc.waitForEvent('lease.acquired', 15_000);
      const before = await readDiskSet(stack.outputDir);
      expect(before.accessKeyId).toBe(acquired.access_key_id);
      const generation = await readFile(path.join(stack.outputDir, '..data', 'credentials.json'), 'utf8');

      await stack.issuer.pause();
      const mark = proc.lines.length;
      proc.child.kill('SIGHUP');
      const failed = await proc.waitForEvent('lease.failed', 15_000, mark);
      expect(failed).toMatchObject({
        code: 'ERR_STS_ACCESS_DENIED',
        http_status: 403,
        retryable: true,
        set_kept_until: before.expiration,
      });
      // First failure: the retry is drawn over a sixteenth of the time until the readiness margin.
      const failedAt = Date.parse(String(failed.time));
      const untilMargin =
        Date.parse(before.expiration) -
        Number(
          stack.env.STS_SIDECAR_READY_MARGIN_SECONDS ?? VARIABLES.STS_SIDECAR_READY_MARGIN_SECONDS.default,
        ) *
          1000 -
        failedAt;
      const retryIn = Date.parse(String(failed.next_attempt)) - failedAt;
      expect(retryIn).toBeGreaterThan(0);
      expect(retryIn).toBeLessThanOrEqual(Math.max(500, untilMargin / 16) + 1000);
      // A second failed attempt, to show the outage persists and the set still stays.
      proc.child.kill('SIGHUP');
      await proc.waitFor(
        (l) => l.event === 'lease.failed' && proc.lines.indexOf(l) > proc.lines.indexOf(failed),
        10_000,
        'second lease.failed',
      );
      expect(
        proc.lines.slice(mark).some((l) => l.event === 'lease.revoked' || l.event === 'lease.renewed'),
      ).toBe(false);
      expect(await readFile(path.join(stack.outputDir, 'credentials.json'), 'utf8')).toBe(generation);
      const s3 = s3For(stack.rgw!.stack, before);
      try {
        expect(
          await outcome(
            s3.send(
              new PutObjectCommand({ Bucket: BUCKET, Key: `${stack.prefix}during-outage.txt`, Body: 'x' }),
            ),
          ),
        ).toBe('ok');
      } finally {
        s3.destroy();
      }

      await stack.issuer.resume();
      proc.child.kill('SIGHUP');
      const renewed = await proc.waitForEvent('lease.renewed', 15_000, mark);
      expect(renewed.access_key_id).not.toBe(before.accessKeyId);
      const after = await readDiskSet(stack.outputDir);
      expect(after.accessKeyId).toBe(renewed.access_key_id);
      const s3b = s3For(stack.rgw!.stack, after);
      try {
        expect(
          await outcome(
            s3b.send(
              new PutObjectCommand({ Bucket: BUCKET, Key: `${stack.prefix}after-outage.txt`, Body: 'y' }),
            ),
          ),
        ).toBe('ok');
      } finally {
        s3b.destroy();
      }
    } finally {
      proc.kill();
      await proc.exited;
    }
  });
});
