/**
 * Credentials really expire at the STS backend, and the daemon replaces them before they do.
 *
 * The case needs short leases. RGW: its minimum session (rgw_sts_min_session_duration, 900 by default) is
 * lowered to 60 s for this file through the admin socket and restored afterwards (lowerRgwMinDuration
 * guards it across files). SeaweedFS cannot: its minimum DurationSeconds is a constant 900 s, and since
 * 4.45 (seaweedfs#11048) a short web token no longer shortens the lease, so the case is skipped there with
 * that reason rather than waiting 15 minutes.
 *
 * MinIO: its minimum DurationSeconds is 900 s too, but without DurationSeconds it ends the credentials at
 * the web token's `exp` (the sidecar always sends DurationSeconds, so its leases are never that short).
 * The [minio] case therefore proves the two halves separately, in one 60-odd-second run: the sidecar
 * renews its 900 s lease well before its expiration (a 0.1 refresh fraction) and both keys work until
 * then; and a key MinIO issued for 60 s (a 60 s token, no DurationSeconds) is refused after its
 * expiration while the sidecar's new key keeps working.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { AssumeRoleWithWebIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { recordSecret } from '../support/secrets.ts';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import type { LocalStack } from '../stack/local-stack.ts';
import { startSidecar } from '../support/sidecar-process.ts';
import { BACKENDS, caseFor } from './backends.ts';
import { FAST_RETRY_ENV, lowerRgwMinDuration, outcome, readDiskSet, sleep } from './support.ts';

const BUCKET = 'conf-expiry';

for (const b of BACKENDS) {
  describe.skipIf(b.skip)(`[${b.name}] credential expiry${b.gate('conformance/expiry')}`, () => {
    let stack: LocalStack;
    let restore: (() => Promise<void>) | undefined;
    const it = caseFor(b, {
      seaweedfs:
        'its minimum DurationSeconds is a fixed 900 s and 4.45+ does not end a lease at the token exp, so an expiry takes 15 min to observe',
    });

    beforeAll(async () => {
      b.assertUsable();
      if (b.name === 'seaweedfs') return;
      stack = await b.start({ bucket: BUCKET });
      if (b.name === 'ceph-rgw') restore = await lowerRgwMinDuration(stack.rgw!.stack, 60);
    });
    afterAll(async () => {
      await restore?.();
      await stack?.close();
    });

    if (b.name === 'minio') {
      it(
        'the sidecar renews its 900 s lease early; a MinIO key past its expiration (60 s, the token exp) is refused while the renewed one works',
        { timeout: 150_000 },
        async () => {
          const put = (s3: ReturnType<typeof b.s3>, name: string) =>
            outcome(
              s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${stack.prefix}${name}`, Body: name })),
            );
          // A 60 s key: MinIO follows the token's exp when DurationSeconds is left out.
          const token = await stack.issuer.mint(
            { sub: stack.subject, aud: stack.audience },
            { ttlSeconds: 60 },
          );
          recordSecret(token);
          const sts = new STSClient({
            region: 'us-east-1',
            endpoint: stack.env.STS_SIDECAR_STS_ENDPOINT,
            maxAttempts: 1,
          });
          const short = await sts
            .send(
              new AssumeRoleWithWebIdentityCommand({
                WebIdentityToken: token,
                RoleArn: stack.env.STS_SIDECAR_ROLE_ARN,
                RoleSessionName: 'expiry-60s',
              }),
            )
            .finally(() => sts.destroy());
          const c = short.Credentials!;
          recordSecret(c.SecretAccessKey!);
          recordSecret(c.SessionToken!);
          const shortExpiresAt = c.Expiration!.getTime();
          expect(shortExpiresAt - Date.now()).toBeLessThanOrEqual(61_000);
          const shortS3 = b.s3(stack, {
            accessKeyId: c.AccessKeyId!,
            secretAccessKey: c.SecretAccessKey!,
            sessionToken: c.SessionToken!,
          });

          const proc = startSidecar(
            {
              ...stack.env,
              STS_SIDECAR_TTL_SECONDS: '900',
              STS_SIDECAR_REFRESH_FRACTION: '0.1',
              STS_SIDECAR_REFRESH_JITTER: '0',
              ...FAST_RETRY_ENV,
            },
            ['run'],
          );
          try {
            const acquired = await proc.waitForEvent('lease.acquired', 15_000);
            expect(acquired).toMatchObject({ ttl_seconds: 900, stepped_down: false });
            const first = await readDiskSet(stack.outputDir);
            const firstExpiresAt = Date.parse(first.expiration);
            const oldS3 = b.s3(stack, first);
            expect(await put(oldS3, 'first.txt')).toBe('ok');
            expect(await put(shortS3, 'short-lived.txt')).toBe('ok');

            // The first lease of a run refreshes at 18..90 s of its 900 s (firstLeaseSchedule).
            const renewed = await proc.waitForEvent('lease.renewed', 100_000);
            expect(Date.parse(String(renewed.time))).toBeLessThan(firstExpiresAt - 800_000);
            const second = await readDiskSet(stack.outputDir);
            expect(second.accessKeyId).not.toBe(first.accessKeyId);
            const newS3 = b.s3(stack, second);
            expect(await put(oldS3, 'still-valid.txt')).toBe('ok');

            await sleep(Math.max(0, shortExpiresAt + 3_000 - Date.now()));
            const refused = await put(shortS3, 'too-late.txt');
            expect(refused).toMatch(/ 403$/);
            expect(await put(newS3, 'second.txt')).toBe('ok');
            console.info(`[conformance/expiry] minio: a key after its expiration: ${refused}`);
            expect(proc.lines.some((l) => l.event === 'lease.expired' || l.event === 'lease.failed')).toBe(
              false,
            );
            for (const s3 of [oldS3, newS3, shortS3]) s3.destroy();
          } finally {
            proc.kill();
            await proc.exited;
          }
        },
      );
      return;
    }

    it(
      'an old access key stops working after its expiration; the sidecar renewed the set before then',
      { timeout: 100_000 },
      async () => {
        const ttl = '60';
        const proc = startSidecar(
          {
            ...stack.env,
            STS_SIDECAR_TTL_SECONDS: ttl,
            STS_SIDECAR_STS_MIN_DURATION_SECONDS: ttl,
            STS_SIDECAR_READY_MARGIN_SECONDS: '10',
            STS_SIDECAR_REFRESH_FRACTION: '0.5',
            STS_SIDECAR_REFRESH_JITTER: '0',
            STS_SIDECAR_BACKOFF_INITIAL_SECONDS: '0.5',
            STS_SIDECAR_BACKOFF_MAX_SECONDS: '2',
          },
          ['run'],
        );
        try {
          const acquired = await proc.waitForEvent('lease.acquired', 15_000);
          expect(acquired).toMatchObject({
            ttl_seconds: Number(ttl),
            stepped_down: false,
            capped_by_token_exp: false,
          });
          const first = await readDiskSet(stack.outputDir);
          const firstExpiresAt = Date.parse(first.expiration);
          expect(firstExpiresAt - Date.now()).toBeLessThanOrEqual(61_000);
          // The refresh is scheduled from the lifetime received, not the one asked.
          expect(Date.parse(String(acquired.next_refresh))).toBeLessThan(firstExpiresAt);
          const oldS3 = b.s3(stack, first);
          const put = (s3: ReturnType<typeof b.s3>, name: string) =>
            outcome(
              s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${stack.prefix}${name}`, Body: name })),
            );
          expect(await put(oldS3, 'first.txt')).toBe('ok');

          const renewed = await proc.waitForEvent('lease.renewed', 45_000);
          const renewedAt = Date.parse(String(renewed.time));
          expect(Date.now()).toBeLessThan(firstExpiresAt);
          expect(renewedAt).toBeLessThan(firstExpiresAt);
          const second = await readDiskSet(stack.outputDir);
          expect(second.accessKeyId).toBe(renewed.access_key_id);
          expect(second.accessKeyId).not.toBe(first.accessKeyId);
          expect(Date.parse(second.expiration)).toBeGreaterThan(firstExpiresAt);
          const newS3 = b.s3(stack, second);

          // Until the first expiration both sets work; after it only the new one.
          expect(await put(oldS3, 'still-valid.txt')).toBe('ok');
          await sleep(Math.max(0, firstExpiresAt + 3_000 - Date.now()));
          expect(Date.now()).toBeLessThan(Date.parse(second.expiration));
          const refused = await put(oldS3, 'too-late.txt');
          expect(refused).toMatch(/ 403$/);
          expect(await put(newS3, 'second.txt')).toBe('ok');
          console.info(`[conformance/expiry] ${b.name}: old key after its expiration: ${refused}`);
          expect(proc.lines.some((l) => l.event === 'lease.expired' || l.event === 'lease.failed')).toBe(
            false,
          );
          oldS3.destroy();
          newS3.destroy();
        } finally {
          proc.kill();
          await proc.exited;
        }
      },
    );
  });
}
