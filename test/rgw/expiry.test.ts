/**
 * Credentials really expire at RGW, and the daemon replaces them before they do. RGW's minimum session
 * (rgw_sts_min_session_duration, 900 by default) is lowered to 60 s for this file through the admin socket
 * and restored afterwards (see lowerRgwMinDuration for the cross-file guard).
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack, type LocalStack } from '../stack/local-stack.ts';
import { startSidecar } from '../support/sidecar-process.ts';
import {
  assertRgwUsable,
  lowerRgwMinDuration,
  outcome,
  readDiskSet,
  rgwGate,
  s3For,
  skipRgw,
  sleep,
} from './support.ts';

const BUCKET = 'rgw-expiry';
const gate = rgwGate('rgw/expiry');

describe.skipIf(skipRgw)(`credential expiry at RGW${gate}`, () => {
  let stack: LocalStack;
  let restore: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    assertRgwUsable();
    stack = await startLocalStack({ sts: 'ceph-rgw', bucket: BUCKET });
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
      const proc = startSidecar(
        {
          ...stack.env,
          STS_SIDECAR_TTL_SECONDS: '60',
          STS_SIDECAR_STS_MIN_DURATION_SECONDS: '60',
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
        expect(acquired).toMatchObject({ ttl_seconds: 60, stepped_down: false });
        const first = await readDiskSet(stack.outputDir);
        const firstExpiresAt = Date.parse(first.expiration);
        expect(firstExpiresAt - Date.now()).toBeLessThanOrEqual(61_000);
        const oldS3 = s3For(stack.rgw!.stack, first);
        const put = (s3: ReturnType<typeof s3For>, name: string) =>
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
        const newS3 = s3For(stack.rgw!.stack, second);

        // Until the first expiration both sets work; after it only the new one.
        expect(await put(oldS3, 'still-valid.txt')).toBe('ok');
        await sleep(Math.max(0, firstExpiresAt + 3_000 - Date.now()));
        expect(Date.now()).toBeLessThan(Date.parse(second.expiration));
        const refused = await put(oldS3, 'too-late.txt');
        expect(refused).toMatch(/ 403$/);
        expect(await put(newS3, 'second.txt')).toBe('ok');
        console.info(`[rgw/expiry] old key after its expiration: ${refused}`);
        expect(proc.lines.some((l) => l.event === 'lease.expired' || l.event === 'lease.failed')).toBe(false);
        oldS3.destroy();
        newS3.destroy();
      } finally {
        proc.kill();
        await proc.exited;
      }
    },
  );
});
