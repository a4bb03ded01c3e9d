/**
 * Credentials really expire at the STS backend, and the daemon replaces them before they do.
 *
 * Short leases differ per backend. RGW: its minimum session (rgw_sts_min_session_duration, 900 by default)
 * is lowered to 60 s for this file through the admin socket and restored afterwards (lowerRgwMinDuration
 * guards it across files). SeaweedFS: the minimum is a fixed 900 s, but it ends a lease with the web
 * token's `exp`, so a 60 s projected token gives a 60 s lease (flagged capped_by_token_exp); the test
 * rotates the token (as the kubelet would) so that the renewal gets a lease reaching past the first one.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../stack/local-stack.ts';
import { startSidecar } from '../support/sidecar-process.ts';
import { BACKENDS } from './backends.ts';
import { lowerRgwMinDuration, outcome, readDiskSet, sleep } from './support.ts';

const BUCKET = 'conf-expiry';

for (const b of BACKENDS) {
  describe.skipIf(b.skip)(`[${b.name}] credential expiry${b.gate('conformance/expiry')}`, () => {
    let stack: LocalStack;
    let restore: (() => Promise<void>) | undefined;
    const seaweedfs = b.name === 'seaweedfs';

    beforeAll(async () => {
      b.assertUsable();
      stack = await b.start({ bucket: BUCKET, tokenTtlSeconds: seaweedfs ? 60 : undefined });
      if (!seaweedfs) restore = await lowerRgwMinDuration(stack.rgw!.stack, 60);
    });
    afterAll(async () => {
      await restore?.();
      await stack?.close();
    });

    it(
      'an old access key stops working after its expiration; the sidecar renewed the set before then',
      { timeout: 100_000 },
      async () => {
        // RGW: asks 60 s (the lowered minimum). SeaweedFS: asks its 900 s minimum, gets the token's 60 s.
        const ttl = seaweedfs ? '900' : '60';
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
            capped_by_token_exp: seaweedfs,
          });
          // The kubelet rotates the projected token long before it expires.
          if (seaweedfs) await stack.rotateToken(undefined, 180);
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
