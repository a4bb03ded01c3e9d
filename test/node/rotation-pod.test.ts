/**
 * The two slow proofs of the real node, run concurrently in one file so that their minutes of waiting hold
 * one vitest worker, not two (about 10 minutes in all, beside the other files):
 *
 * - The kubelet's own rotation of the projected token, seen by the sidecar: a 600 s token (the API server's
 *   minimum) is replaced after about 80 % of its life (~8 minutes); the sidecar logs `token.rotated`, and the
 *   next lease is asked for with the new token (the flex-auth stand-in records the `iat` of every bearer it
 *   verifies). Short leases (120 s on RGW, its minimum lowered for the run) make that next lease come within a
 *   minute of the rotation.
 * - The JS SDK app of js-sdk-pod.test.ts picks up the sidecar's refreshed set with nothing but its default
 *   credential chain: the chart's `credential_process` profile, a lease of 900 s (the smallest the STS
 *   grants). The sidecar refreshes at about half the lease; the SDK runs the process again when its cached
 *   set is within 5 minutes of expiring (about 600 s in) and gets the new one, with which its next puts still
 *   succeed.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { lowerRgwMinDuration } from '../conformance/support.ts';
import { nodeGate, skipNode } from '../stack/kube-node.ts';
import { nodeAppImage } from '../stack/node-images.ts';
import {
  APP_CONTAINER,
  BUCKET,
  events,
  PREFIX,
  podReady,
  SIDECAR_CONTAINER,
  startPodStack,
  type PodStack,
} from './support.ts';

const gate = nodeGate('test/node/rotation-pod.test.ts');
const LEASE_SECONDS = 900;

describe.skipIf(skipNode).concurrent(`slow proofs on a real pod${gate}`, () => {
  describe(`the kubelet's token rotation in a real pod`, () => {
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
      async ({ expect }) => {
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

  describe(`the JS SDK picks up a refreshed set in a real pod`, () => {
    let s: PodStack;
    let image: string;
    beforeAll(async () => {
      s = await startPodStack('pods-js-refresh');
      image = await nodeAppImage({
        APP_S3_ENDPOINT: s.rgw.endpoint,
        APP_S3_REGION: s.rgw.region,
        APP_BUCKET: BUCKET,
        APP_PREFIX: PREFIX,
      });
    }, 300_000);
    afterAll(async () => {
      await s?.close();
    });

    it('credential_process runs again near expiry and returns the set the sidecar refreshed meanwhile', async ({
      expect,
    }) => {
      const [repository, tag] = image.split(':') as [string, string];
      await s.install(
        'jsrefresh',
        await s.values(
          { ttlSeconds: LEASE_SECONDS, app: { awsConfig: { enabled: true } } },
          { image: { repository, tag, pullPolicy: 'Never' } },
        ),
      );
      const pod = await s.waitPod('jsrefresh', 'Ready', podReady, 120_000);
      const first = await s.waitLog(pod, APP_CONTAINER, 'a first S3 call', (l) => events(l, 's3').length > 0);
      const firstExpiration = String(events(first, 's3')[0]?.expiration);
      expect(events(first, 's3')[0]?.inside, JSON.stringify(first)).toBe('ok');

      const later = await s.waitLog(
        pod,
        APP_CONTAINER,
        'a put with another set',
        (l) => events(l, 's3').some((e) => e.expiration !== firstExpiration && e.expiration !== undefined),
        (LEASE_SECONDS - 180) * 1000,
      );
      const refreshed = events(later, 's3').find((e) => e.expiration !== firstExpiration);
      expect(refreshed?.inside, 'the put with the refreshed set').toBe('ok');
      expect(refreshed?.outside).toBe('AccessDenied');
      // The SDK's new set is one the sidecar wrote after the first, not one it made up.
      const leases = [
        ...events(s.json(pod, SIDECAR_CONTAINER), 'lease.acquired'),
        ...events(s.json(pod, SIDECAR_CONTAINER), 'lease.renewed'),
      ].map((e) => Date.parse(String(e.expiration)));
      expect(leases).toContain(Date.parse(String(refreshed?.expiration)));
      expect(Date.parse(String(refreshed?.expiration))).toBeGreaterThan(Date.parse(firstExpiration));
      // Before the refresh every call used the first set: the SDK cached it, it did not re-run per call.
      const before = events(later, 's3').filter((e) => Number(e.time) < Number(refreshed?.time));
      expect(before.length).toBeGreaterThan(10);
      expect(before.every((e) => e.expiration === firstExpiration)).toBe(true);
    }, 900_000);
  });
});
