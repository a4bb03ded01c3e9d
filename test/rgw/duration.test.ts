/**
 * DurationSeconds against the real Ceph RGW. The rule: DurationSeconds = min(requested TTL, flex-auth grant,
 * STS_SIDECAR_STS_MAX_DURATION_SECONDS); when the STS still refuses the duration (the role's real maximum is
 * lower than configured) the sidecar retries once at STS_SIDECAR_STS_MIN_DURATION_SECONDS. A grant below
 * the minimum is refused before any STS call.
 *
 * RGW 16.2 only creates roles with MaxSessionDuration in 3600..43200 (900 is InvalidInput), so "the role
 * maximum is below what the sidecar asks" is a 3600 s role and a 7200 s request here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack, type LocalStack } from '../stack/local-stack.ts';
import { runSidecarCommand, startSidecar } from '../support/sidecar-process.ts';
import { assertRgwUsable, readDiskSet, rgwGate, skipRgw } from './support.ts';

const BUCKET = 'rgw-duration';
const gate = rgwGate('rgw/duration');

describe.skipIf(skipRgw)(`DurationSeconds on RGW${gate}`, () => {
  let stack: LocalStack;

  beforeAll(async () => {
    assertRgwUsable();
    stack = await startLocalStack({ sts: 'ceph-rgw', bucket: BUCKET, roleMaxSessionDuration: 3600 });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('steps down to STS_SIDECAR_STS_MIN_DURATION_SECONDS when RGW refuses a duration above the role maximum', async () => {
    await stack.writePolicy({
      rules: [
        {
          tenant: stack.tenant,
          subject: '*',
          bucket: BUCKET,
          prefix: stack.prefix,
          actions: ['read', 'write', 'list'],
          max_ttl_seconds: 7200,
        },
      ],
    });
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
    expect(acquired).toMatchObject({ requested_ttl_seconds: 7200, ttl_seconds: 900, stepped_down: true });
    const set = await readDiskSet(stack.outputDir);
    const lifetime = Date.parse(set.expiration) - t0;
    expect(lifetime).toBeGreaterThan(880_000);
    expect(lifetime).toBeLessThanOrEqual(901_000);
  });

  it('refuses a grant below the STS minimum with lease.denied ERR_TTL_BELOW_STS_MINIMUM and no STS call', async () => {
    await stack.writePolicy({
      rules: [
        {
          tenant: stack.tenant,
          subject: '*',
          bucket: BUCKET,
          prefix: stack.prefix,
          actions: ['read', 'write', 'list'],
          max_ttl_seconds: 600,
        },
      ],
    });
    const before = stack.decision.requestCount;
    // trace level logs every call.finished, so an STS call would show.
    const proc = startSidecar({ ...stack.env, STS_SIDECAR_LOG_LEVEL: 'trace' }, ['run']);
    try {
      const denied = await proc.waitForEvent('lease.denied', 15_000);
      expect(denied).toMatchObject({ code: 'ERR_TTL_BELOW_STS_MINIMUM', backend: 'ceph-rgw' });
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
});
