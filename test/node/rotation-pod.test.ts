/**
 * The kubelet's own rotation of the projected token, seen by the sidecar in a real pod: a 600 s token
 * (the API server's minimum) is replaced after about 80 % of its life (~8 minutes); the sidecar logs
 * `token.rotated`, and the next lease is asked for with the new token (the flex-auth stand-in records the
 * `iat` of every bearer it verifies). Short leases (120 s on RGW, its minimum lowered for the run) make
 * that next lease come within a minute of the rotation. This file takes about 9 minutes; vitest runs it
 * beside the other files.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lowerRgwMinDuration } from '../conformance/support.ts';
import { nodeGate, skipNode } from '../stack/kube-node.ts';
import { podReady, SIDECAR_CONTAINER, startPodStack, type PodStack } from './support.ts';

const gate = nodeGate('test/node/rotation-pod.test.ts');
const events = (lines: Record<string, unknown>[], event: string) => lines.filter((l) => l.event === event);

describe.skipIf(skipNode)(`the kubelet's token rotation in a real pod${gate}`, () => {
  let s: PodStack;
  let restoreMinDuration: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    s = await startPodStack('pods-rotation');
    restoreMinDuration = await lowerRgwMinDuration(s.rgw, 60);
  }, 300_000);
  afterAll(async () => {
    await restoreMinDuration?.();
    await s?.close();
  });

  it(
    'token.rotated is logged and the next lease uses the new token',
    async () => {
      await s.install(
        'rotation',
        await s.values({
          token: { expirationSeconds: 600 },
          ttlSeconds: 120,
          readyMarginSeconds: 30,
          // The sidecar refuses a TTL under the STS minimum it is told; RGW's is lowered to 60 s above.
          extraEnv: [{ name: 'STS_SIDECAR_STS_MIN_DURATION_SECONDS', value: '60' }],
        }),
      );
      const pod = await s.waitPod('rotation', 'Ready', podReady, 120_000);
      const first = await s.waitLog(
        pod,
        SIDECAR_CONTAINER,
        'lease.acquired',
        (l) => events(l, 'lease.acquired').length > 0,
      );
      const firstTokenIat = s.decision.decisions.find((d) => d.decision === 'allow')?.token_issued_at;
      expect(firstTokenIat, 'the decision server saw the first token').toBeDefined();
      expect(events(first, 'token.rotated')).toHaveLength(0);

      const lines = await s.waitLog(
        pod,
        SIDECAR_CONTAINER,
        'token.rotated',
        (l) => events(l, 'token.rotated').length > 0,
        11 * 60_000,
      );
      const rotated = events(lines, 'token.rotated')[0];
      const newIat = Date.parse(String(rotated?.issued_at)) / 1000;
      expect(newIat).toBeGreaterThan(firstTokenIat ?? Infinity);
      expect(rotated?.subject).toBe(`system:serviceaccount:${s.namespace}:rotation`);

      // The next lease: a decision asked with the new token, then lease.renewed in the sidecar's log.
      const renewedBefore = events(lines, 'lease.renewed').length;
      const after = await s.waitLog(
        pod,
        SIDECAR_CONTAINER,
        'a lease after the rotation',
        (l) =>
          events(l, 'lease.renewed').length > renewedBefore &&
          s.decision.decisions.some((d) => d.decision === 'allow' && d.token_issued_at === newIat),
        3 * 60_000,
      );
      expect(events(after, 'lease.failed')).toHaveLength(0);
      expect(events(after, 'lease.denied')).toHaveLength(0);
      console.info(
        `[rotation-pod] token rotated ${Math.round(newIat - (firstTokenIat ?? 0))} s after the first was issued`,
      );
    },
    15 * 60_000,
  );
});
