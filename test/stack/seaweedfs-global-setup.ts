/**
 * vitest globalSetup: brings the SeaweedFS stack (test/stack/seaweedfs.sh) up once for the whole run when
 * `weed` is built here. With STSTEST_REQUIRE_SEAWEEDFS=1 an unusable stack fails the run. teardown() stops
 * the stack only if this setup started it, unless STSTEST_KEEP_SEAWEEDFS is set.
 */
import { ensureSeaweedfs, isSeaweedfsUp, seaweedfsUsable, stopSeaweedfs } from './seaweedfs.ts';
import { stackGlobalSetup } from './stack-script.ts';

export const { setup, teardown } = stackGlobalSetup({
  tag: 'seaweedfs-global-setup',
  name: 'the SeaweedFS stack',
  requireVariable: 'STSTEST_REQUIRE_SEAWEEDFS',
  keepVariable: 'STSTEST_KEEP_SEAWEEDFS',
  usable: seaweedfsUsable,
  isUp: isSeaweedfsUp,
  ensure: async () => {
    const stack = await ensureSeaweedfs();
    return { label: `SeaweedFS ${stack.version}`, at: stack.endpoint };
  },
  stop: stopSeaweedfs,
});
