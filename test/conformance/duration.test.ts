/**
 * DurationSeconds on every real STS. The rule: DurationSeconds = min(requested TTL, flex-auth grant,
 * STS_SIDECAR_STS_MAX_DURATION_SECONDS); when the STS still refuses the duration (its real maximum is lower
 * than configured) the sidecar retries once at STS_SIDECAR_STS_MIN_DURATION_SECONDS. A grant below the
 * minimum is refused before any STS call.
 *
 * "The maximum is below what the sidecar asks" is a 3600 s maximum and a 7200 s request on both: RGW 16.2
 * only creates roles with MaxSessionDuration in 3600..43200 (its refusal is InvalidArgument); SeaweedFS
 * refuses a DurationSeconds above its maxSessionLength (1h in test/stack/seaweedfs.sh) with
 * InvalidParameterValue, while a role's own maximum there only clamps, silently.
 *
 * MinIO cannot refuse a duration for being too long: its range is 900..31536000 s and the sidecar never
 * asks more than 43200 s (STS_SIDECAR_TTL_SECONDS/STS_SIDECAR_STS_MAX_DURATION_SECONDS). Its [minio] case
 * shows instead that 43200 s is issued exactly as asked, and that its one duration refusal (below 900 s,
 * "invalid token expiry") is recognised as ERR_STS_DURATION_OUT_OF_RANGE: the sidecar steps down, and with
 * a configured minimum below MinIO's the step-down is refused as well.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../stack/local-stack.ts';
import { runSidecarCommand, startSidecar } from '../support/sidecar-process.ts';
import { BACKENDS } from './backends.ts';
import { readDiskSet } from './support.ts';

const BUCKET = 'conf-duration';

for (const b of BACKENDS) {
  describe.skipIf(b.skip)(`[${b.name}] DurationSeconds${b.gate('conformance/duration')}`, () => {
    let stack: LocalStack;

    beforeAll(async () => {
      b.assertUsable();
      stack = await b.start({ bucket: BUCKET, roleMaxSessionDuration: 3600 });
    });
    afterAll(async () => {
      await stack?.close();
    });

    const minio = b.name === 'minio';
    /** flex-auth grants the stack's prefix read, write and list for up to `maxTtlSeconds`. */
    const grantUpTo = (maxTtlSeconds: number) =>
      stack.writePolicy({
        rules: [
          {
            tenant: stack.tenant,
            subject: '*',
            bucket: BUCKET,
            prefix: stack.prefix,
            actions: ['read', 'write', 'list'],
            max_ttl_seconds: maxTtlSeconds,
          },
        ],
      });

    if (minio) {
      it("MinIO issues the sidecar's largest duration (43200 s) as asked; its refusal below 900 s is ERR_STS_DURATION_OUT_OF_RANGE and the step-down is tried", async () => {
        await grantUpTo(43_200);
        const t0 = Date.now();
        const long = await runSidecarCommand(
          { ...stack.env, STS_SIDECAR_TTL_SECONDS: '43200', STS_SIDECAR_STS_MAX_DURATION_SECONDS: '43200' },
          ['once'],
        );
        expect(long.code, long.stderr).toBe(0);
        expect(long.lines.find((l) => l.event === 'lease.acquired')).toMatchObject({
          ttl_seconds: 43_200,
          stepped_down: false,
        });
        const expiresAt = Date.parse((await readDiskSet(stack.outputDir)).expiration);
        expect(expiresAt - t0).toBeGreaterThan(43_190_000);
        expect(expiresAt - Date.now()).toBeLessThanOrEqual(43_201_000);

        // A minimum configured below MinIO's: 600 s is asked, refused, and the step-down to 60 s too.
        await grantUpTo(600);
        const short = await runSidecarCommand(
          {
            ...stack.env,
            STS_SIDECAR_TTL_SECONDS: '600',
            STS_SIDECAR_STS_MIN_DURATION_SECONDS: '60',
            STS_SIDECAR_READY_MARGIN_SECONDS: '30',
            STS_SIDECAR_LOG_LEVEL: 'trace',
          },
          ['once'],
        );
        expect(short.code).toBe(3);
        expect(short.lines.find((l) => l.event === 'lease.failed')).toMatchObject({
          code: 'ERR_STS_DURATION_OUT_OF_RANGE',
          http_status: 400,
        });
        expect(short.lines.filter((l) => l.event === 'call.finished' && l.target === 'sts')).toHaveLength(2);
      });
    }

    if (!minio)
      it('steps down to STS_SIDECAR_STS_MIN_DURATION_SECONDS when the STS refuses a duration above its maximum', async () => {
        await grantUpTo(7200);
        const env = {
          ...stack.env,
          STS_SIDECAR_TTL_SECONDS: '7200',
          STS_SIDECAR_STS_MAX_DURATION_SECONDS: '7200',
          STS_SIDECAR_STS_MIN_DURATION_SECONDS: '900',
        };
        const t0 = Date.now();
        const once = await runSidecarCommand(env, ['once']);
        expect(once.code, once.stderr).toBe(0);
        const acquired = once.lines.find((l) => l.event === 'lease.acquired');
        expect(acquired).toMatchObject({
          requested_ttl_seconds: 7200,
          ttl_seconds: 900,
          stepped_down: true,
          capped_by_token_exp: false,
        });
        const set = await readDiskSet(stack.outputDir);
        // The STS started the 900 s somewhere between t0 and now (a loaded machine can take seconds).
        const expiresAt = Date.parse(set.expiration);
        expect(expiresAt - t0).toBeGreaterThan(880_000);
        expect(expiresAt - Date.now()).toBeLessThanOrEqual(901_000);
      });

    it('refuses a grant below the STS minimum with lease.denied ERR_TTL_BELOW_STS_MINIMUM and no STS call', async () => {
      await grantUpTo(600);
      const before = stack.decision.requestCount;
      // trace level logs every call.finished, so an STS call would show.
      const proc = startSidecar({ ...stack.env, STS_SIDECAR_LOG_LEVEL: 'trace' }, ['run']);
      try {
        const denied = await proc.waitForEvent('lease.denied', 15_000);
        expect(denied).toMatchObject({ code: 'ERR_TTL_BELOW_STS_MINIMUM', backend: b.name });
        expect(String(denied.message)).toMatch(/600s.*900s/);
        expect(stack.decision.requestCount).toBeGreaterThan(before);
        const calls = proc.lines.filter((l) => l.event === 'call.finished');
        expect(calls.some((l) => l.target === 'flex_auth')).toBe(true);
        expect(calls.filter((l) => l.target === 'sts')).toEqual([]);
        expect(proc.lines.some((l) => l.event === 'lease.acquired')).toBe(false);
      } finally {
        proc.kill();
        await proc.exited;
      }
    });

    // SeaweedFS up to 4.44 ended a lease at the web token's exp (seaweedfs#11039); 4.45+ (#11048) and RGW
    // do not. The sidecar flags a lease that does (capped_by_token_exp) and schedules from what it got.
    it('a projected token shorter than the lease: the lease outlives the token, not flagged capped_by_token_exp', async () => {
      await grantUpTo(3600);
      await stack.rotateToken(undefined, 1200);
      try {
        const t0 = Date.now();
        const once = await runSidecarCommand({ ...stack.env, STS_SIDECAR_TTL_SECONDS: '3600' }, ['once']);
        expect(once.code, once.stderr).toBe(0);
        const acquired = once.lines.find((l) => l.event === 'lease.acquired');
        expect(acquired).toMatchObject({ ttl_seconds: 3600, capped_by_token_exp: false });
        const expiresAt = Date.parse((await readDiskSet(stack.outputDir)).expiration);
        expect(expiresAt - t0).toBeGreaterThan(3_590_000);
        expect(expiresAt - Date.now()).toBeLessThanOrEqual(3_601_000);
      } finally {
        await stack.rotateToken();
      }
    });
  });
}
