/**
 * A lease the STS ends at the projected token's exp (what SeaweedFS up to 4.44 did; no STS runnable here
 * still does it, so the STS stand-in plays that part): the built sidecar flags it with
 * capped_by_token_exp and schedules the refresh from the lifetime it really got, not from the one asked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack, type LocalStack } from '../stack/local-stack.ts';
import { runSidecarCommand } from '../support/sidecar-process.ts';

describe('a lease capped at the token exp (STS stand-in)', () => {
  let stack: LocalStack;

  beforeAll(async () => {
    // The token ends 20 min from now; the stand-in ends the lease with it, although 60 min are asked.
    stack = await startLocalStack({ sts: 'stand-in', tokenTtlSeconds: 1200, capAtTokenExp: true });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('lease.acquired says capped_by_token_exp and refreshes within the 20 min received', async () => {
    const t0 = Date.now();
    const once = await runSidecarCommand(
      { ...stack.env, STS_SIDECAR_TTL_SECONDS: '3600', STS_SIDECAR_REFRESH_JITTER: '0' },
      ['once'],
    );
    expect(once.code, once.stderr).toBe(0);
    const acquired = once.lines.find((l) => l.event === 'lease.acquired');
    expect(acquired).toMatchObject({ ttl_seconds: 3600, capped_by_token_exp: true });
    const expiresAt = Date.parse(String(acquired?.expiration));
    expect(expiresAt - t0).toBeLessThanOrEqual(1_201_000);
    const refreshIn = Date.parse(String(acquired?.next_refresh)) - t0;
    // Half of the 20 min received (the first lease may refresh earlier), never half of the 60 min asked.
    expect(refreshIn).toBeGreaterThan(0);
    expect(refreshIn).toBeLessThanOrEqual(601_000);
  });

  it('a lease as long as asked (shorter than the token) is not flagged', async () => {
    const once = await runSidecarCommand({ ...stack.env, STS_SIDECAR_TTL_SECONDS: '900' }, ['once']);
    expect(once.code, once.stderr).toBe(0);
    expect(once.lines.find((l) => l.event === 'lease.acquired')).toMatchObject({
      ttl_seconds: 900,
      capped_by_token_exp: false,
    });
  });
});
