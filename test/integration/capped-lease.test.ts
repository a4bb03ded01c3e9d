/**
 * A lease the STS ends at the projected token's exp (what SeaweedFS up to 4.44 did; no STS runnable here
 * still does it, so the STS stand-in plays that part): the built sidecar flags it with
 * capped_by_token_exp and schedules the refresh from the lifetime it really got, not from the one asked,
 * for when the token will have been replaced.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack, type LocalStack } from '../stack/local-stack.ts';
import { runSidecarCommand, startSidecar } from '../support/sidecar-process.ts';

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
    // The daemon: `once` plans no refresh (its lease.acquired has no next_refresh).
    const proc = startSidecar({
      ...stack.env,
      STS_SIDECAR_TTL_SECONDS: '3600',
      STS_SIDECAR_REFRESH_JITTER: '0',
    });
    try {
      const acquired = await proc.waitForEvent('lease.acquired', 15_000);
      expect(acquired).toMatchObject({ ttl_seconds: 3600, capped_by_token_exp: true });
      const expiresAt = Date.parse(String(acquired.expiration));
      expect(expiresAt - t0).toBeLessThanOrEqual(1_201_000);
      const refreshIn = Date.parse(String(acquired.next_refresh)) - t0;
      // Within the 20 min received, never half of the 60 min asked: at the token's expected replacement
      // (80% of its life, 16 min) but no later than the margin rule allows (20 - 6 margin - 1 slack = 13 min),
      // and later than half of what was received (re-sending the same token would get the same expiry).
      expect(refreshIn).toBeGreaterThan(600_000);
      expect(refreshIn).toBeLessThanOrEqual(781_000);
    } finally {
      proc.kill();
      await proc.exited;
    }
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

/**
 * The daemon after a capped lease: re-sending the same token would get the same expiry back, refresh after
 * refresh, ever closer to the token's exp. It waits for the kubelet's next token (the token watch wakes it)
 * and schedules by the token's expected replacement, so each token is exchanged once.
 */
describe('run: renewals after a capped lease wait for the new token (STS stand-in)', () => {
  let stack: LocalStack;
  const TOKEN_TTL = 20;

  beforeAll(async () => {
    stack = await startLocalStack({ sts: 'stand-in', tokenTtlSeconds: TOKEN_TTL, capAtTokenExp: true });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('renews with the rotated token at once and never re-sends a token that capped the lease', async () => {
    await stack.rotateToken(undefined, TOKEN_TTL);
    const t0 = Date.now();
    const proc = startSidecar({
      ...stack.env,
      STS_SIDECAR_TTL_SECONDS: '3600',
      STS_SIDECAR_REFRESH_JITTER: '0',
      STS_SIDECAR_READY_MARGIN_SECONDS: '2',
    });
    try {
      const acquired = await proc.waitForEvent('lease.acquired', 15_000);
      expect(acquired).toMatchObject({ capped_by_token_exp: true });
      const tokenA = stack.standIn!.calls.at(-1)?.tokenId;
      // The first token is replaced after 8 s (the test plays the kubelet): the watch must wake the loop.
      const mark = proc.lines.length;
      await new Promise((r) => setTimeout(r, 8_000 - (Date.now() - t0)));
      await stack.rotateToken(undefined, TOKEN_TTL);
      const renewed = await proc.waitForEvent('lease.renewed', 5_000, mark);
      expect(renewed).toMatchObject({ capped_by_token_exp: true });
      const tokenB = stack.standIn!.calls.at(-1)?.tokenId;
      expect(tokenB).not.toBe(tokenA);
      // The next refresh is planned for B's replacement (80% of its life), not half of the lease left.
      const refreshAt = Date.parse(String(renewed.next_refresh));
      const rotatesAt = Date.parse(String(renewed.expiration)) - TOKEN_TTL * 1000 * 0.2;
      expect(refreshAt).toBeGreaterThanOrEqual(rotatesAt - 2_000);
      // Past the point where half the lease left would have re-sent B (about 18-19 s after A was minted).
      await new Promise((r) => setTimeout(r, 21_000 - (Date.now() - t0)));
      const issued = stack.standIn!.calls.filter((c) => c.outcome === 'issued').map((c) => c.tokenId);
      expect(issued).toEqual([tokenA, tokenB]);
    } finally {
      proc.kill();
      await proc.exited;
    }
  }, 40_000);
});
