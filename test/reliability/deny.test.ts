// Issue 5.4: a deny removes the set within one cycle and says why; a later allow brings it back.
import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultPolicy, startLocalStack, type LocalStack } from '../stack/local-stack.ts';
import { startSidecar, type SidecarProcess } from '../support/sidecar-process.ts';
import {
  eventsOf,
  healthPort,
  httpGet,
  nextEvent,
  recordIssuedSecrets,
  snapshotDir,
  visibleNames,
} from './support/harness.ts';

const FAST = {
  STS_SIDECAR_BACKOFF_INITIAL_SECONDS: '0.2',
  STS_SIDECAR_BACKOFF_MAX_SECONDS: '1',
  STS_SIDECAR_REQUEST_TIMEOUT_SECONDS: '2',
};

describe('deny and revocation', () => {
  describe('on SIGHUP (long lease)', () => {
    let stack: LocalStack;
    let p: SidecarProcess;
    let port: number;
    beforeAll(async () => {
      stack = await startLocalStack({ sts: 'stand-in' });
      p = startSidecar({ ...stack.env, ...FAST, STS_SIDECAR_TTL_SECONDS: '3600' }, ['run'], {
        label: 'deny-sighup',
      });
      port = await healthPort(p);
    });
    afterAll(async () => {
      p?.kill();
      await p?.exited;
      recordIssuedSecrets(stack);
      await stack?.close();
    });

    it('a deny removes the set at the next attempt, logging the reasons; an allow brings it back', async () => {
      const acquired = await p.waitForEvent('lease.acquired', 20_000);
      expect((await httpGet(port, '/readyz')).status).toBe(200);
      expect(visibleNames(await snapshotDir(stack.outputDir))).toHaveLength(5);

      await stack.writePolicy({ rules: [] });
      const from = p.lines.length;
      const t0 = Date.now();
      p.child.kill('SIGHUP');
      const denied = await nextEvent(p, ['lease.denied', 'lease.failed', 'lease.renewed'], from);
      const revoked = await nextEvent(p, ['lease.revoked'], from);
      const revokeMs = Date.parse(String(revoked.line.time)) - t0;
      console.info(`[reliability] deny -> revoked ${revokeMs} ms after SIGHUP`);
      expect(denied.line.event).toBe('lease.denied');
      expect(denied.line.code).toBe('ERR_POLICY_DENIED');
      expect(denied.line.reasons).toEqual(['no_matching_rule']);
      expect(typeof denied.line.decision_id).toBe('string');
      // Within one cycle: the very next attempt after the one that acquired.
      expect(denied.line.attempt).toBe(Number(acquired.attempt) + 1);
      expect(revoked.line.reason).toBe('denied');
      expect(revoked.line.access_key_id).toBe(acquired.access_key_id);
      expect(revokeMs).toBeLessThan(2000);
      const after = await snapshotDir(stack.outputDir);
      expect(visibleNames(after)).toEqual([]);
      expect(Object.keys(after.entries)).toEqual([]);
      expect((await httpGet(port, '/readyz')).status).toBe(503);

      // Denied again on retries: logged each time, but the set is revoked once.
      await nextEvent(p, ['lease.denied'], denied.index + 1, 5000);
      expect(eventsOf(p, 'lease.revoked', from)).toHaveLength(1);
      expect(eventsOf(p, 'lease.failed', from)).toHaveLength(0);

      await stack.writePolicy(defaultPolicy(stack.tenant, stack.bucket, stack.prefix));
      const from2 = p.lines.length;
      p.child.kill('SIGHUP');
      const back = await nextEvent(p, ['lease.acquired', 'lease.renewed'], from2, 5000);
      expect(back.line.event).toBe('lease.acquired');
      expect(back.line.access_key_id).not.toBe(acquired.access_key_id);
      const restored = await snapshotDir(stack.outputDir);
      expect(restored.visible['access-key']).toBe(back.line.access_key_id);
      expect((await httpGet(port, '/readyz')).status).toBe(200);
    });

    it('a grant of none of the asked actions is a deny too (ERR_NOTHING_GRANTED) and revokes', async () => {
      await p.waitForEvent('lease.acquired', 20_000);
      await stack.writePolicy({
        rules: [
          {
            ...defaultPolicy(stack.tenant, stack.bucket, stack.prefix).rules[0]!,
            answer_actions: ['delete'],
          },
        ],
      });
      const from = p.lines.length;
      p.child.kill('SIGHUP');
      const denied = await nextEvent(p, ['lease.denied', 'lease.failed', 'lease.renewed'], from);
      expect(denied.line.event).toBe('lease.denied');
      expect(denied.line.code).toBe('ERR_NOTHING_GRANTED');
      expect(denied.line.reasons).toEqual(['ERR_NOTHING_GRANTED']);
      await nextEvent(p, ['lease.revoked'], from);
      expect((await readdir(stack.outputDir)).length).toBe(0);
      await stack.writePolicy(defaultPolicy(stack.tenant, stack.bucket, stack.prefix));
      p.child.kill('SIGHUP');
      await nextEvent(p, ['lease.acquired'], from, 5000);
    });
  });

  describe('at the scheduled refresh (6 s lease, no signal)', () => {
    let stack: LocalStack;
    afterAll(async () => {
      recordIssuedSecrets(stack);
      await stack?.close();
    });

    it('the deny lands at the next refresh and revokes well before the expiry', async () => {
      stack = await startLocalStack({ sts: 'stand-in', leaseSeconds: 6, minDurationSeconds: 1 });
      const p = startSidecar(
        {
          ...stack.env,
          ...FAST,
          STS_SIDECAR_TTL_SECONDS: '60',
          STS_SIDECAR_STS_MIN_DURATION_SECONDS: '1',
          STS_SIDECAR_READY_MARGIN_SECONDS: '2',
        },
        ['run'],
        { label: 'deny-scheduled' },
      );
      try {
        const acquired = await p.waitForEvent('lease.acquired', 20_000);
        const expEst = Date.parse(String(acquired.time)) + 6000;
        await stack.writePolicy({ rules: [] });
        const from = p.lines.length;
        const denied = await nextEvent(p, ['lease.denied', 'lease.failed', 'lease.renewed'], from, 10_000);
        const revoked = await nextEvent(p, ['lease.revoked'], from);
        expect(denied.line.event).toBe('lease.denied');
        expect(denied.line.attempt).toBe(Number(acquired.attempt) + 1);
        const earlyMs = expEst - Date.parse(String(revoked.line.time));
        console.info(`[reliability] scheduled deny: revoked ${earlyMs} ms before the lease's expiry`);
        expect(earlyMs).toBeGreaterThan(1500);
        expect(eventsOf(p, 'lease.expired', from)).toHaveLength(0);
        expect((await readdir(stack.outputDir)).length).toBe(0);
      } finally {
        p.kill();
        await p.exited;
      }
    });
  });
});
