/**
 * The JS SDK app of js-sdk-pod.test.ts picks up the sidecar's refreshed set with nothing but its default
 * credential chain: the chart's `credential_process` profile, a lease of 900 s (the smallest the STS
 * grants). The sidecar refreshes at about half the lease; the SDK runs the process again when its cached set
 * is within 5 minutes of expiring (about 600 s in) and gets the new one, with which its next puts still
 * succeed. About ten minutes of waiting: a file of its own, so that it runs beside rotation-pod.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeGate, skipNode } from '../stack/kube-node.ts';
import { nodeAppImage } from '../stack/node-images.ts';
import {
  APP_CONTAINER,
  BUCKET,
  PREFIX,
  podReady,
  SIDECAR_CONTAINER,
  startPodStack,
  type PodStack,
} from './support.ts';

const gate = nodeGate('test/node/js-sdk-refresh.test.ts');
const events = (lines: Record<string, unknown>[], event: string) => lines.filter((l) => l.event === event);
const LEASE_SECONDS = 900;

describe.skipIf(skipNode)(`the JS SDK picks up a refreshed set in a real pod${gate}`, () => {
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

  it('credential_process runs again near expiry and returns the set the sidecar refreshed meanwhile', async () => {
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
