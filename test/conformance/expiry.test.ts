/**
 * Credentials really expire at the STS backend, and the daemon replaces them before they do.
 *
 * The case needs short leases. RGW: its minimum session (rgw_sts_min_session_duration, 900 by default) is
 * lowered to 60 s for this file through the admin socket and restored afterwards (lowerRgwMinDuration
 * guards it across files). SeaweedFS cannot: its minimum DurationSeconds is a constant 900 s, and since
 * 4.45 (seaweedfs#11048) a short web token no longer shortens the lease, so the case is skipped there with
 * that reason rather than waiting 15 minutes.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import type { LocalStack } from '../stack/local-stack.ts';
import { startSidecar } from '../support/sidecar-process.ts';
import { BACKENDS, caseFor } from './backends.ts';
import { lowerRgwMinDuration, outcome, readDiskSet, sleep } from './support.ts';

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
      restore = await lowerRgwMinDuration(stack.rgw!.stack, 60);
    });
    afterAll(async () => {
      await restore?.();
      await stack?.close();
    });

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
