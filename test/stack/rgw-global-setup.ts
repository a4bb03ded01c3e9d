/**
 * vitest globalSetup: brings the Ceph RGW stack up once for the whole run (when usable) so test files only
 * find it running. With STSTEST_REQUIRE_RGW=1 an unusable stack fails the run. teardown() stops the
 * stack only if this setup started it, unless STSTEST_KEEP_RGW is set.
 */
import { ensureRgw, isRgwUp, rgwUsable, stopRgw } from './ceph-rgw.ts';
import { stackGlobalSetup } from './stack-script.ts';

export const { setup, teardown } = stackGlobalSetup({
  tag: 'rgw-global-setup',
  name: 'the Ceph RGW stack',
  requireVariable: 'STSTEST_REQUIRE_RGW',
  keepVariable: 'STSTEST_KEEP_RGW',
  usable: rgwUsable,
  isUp: () => isRgwUp(),
  ensure: async () => ({ label: 'RGW', at: (await ensureRgw()).endpoint }),
  stop: () => stopRgw(),
});
