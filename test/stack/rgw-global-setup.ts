/**
 * vitest globalSetup: brings the Ceph RGW stack up once for the whole run (when usable) so test files only
 * find it running. With STSTEST_REQUIRE_RGW=1 an unusable stack fails the run. teardown() stops the
 * stack only if this setup started it, unless STSTEST_KEEP_RGW is set.
 */
import { ensureRgw, isRgwUp, rgwUsable, stopRgw } from './ceph-rgw.ts';

let startedHere = false;

export async function setup(): Promise<void> {
  const usable = rgwUsable();
  if ('reason' in usable) {
    if (process.env.STSTEST_REQUIRE_RGW === '1') {
      throw new Error(`STSTEST_REQUIRE_RGW=1 but the Ceph RGW stack is unusable: ${usable.reason}`);
    }
    console.warn(`[rgw-global-setup] Ceph RGW stack not started: ${usable.reason}`);
    return;
  }
  const wasUp = await isRgwUp();
  const t0 = Date.now();
  const stack = await ensureRgw();
  startedHere = !wasUp;
  console.info(
    `[rgw-global-setup] RGW ${wasUp ? 'already running' : `started in ${Date.now() - t0} ms`} at ${stack.endpoint}`,
  );
}

export async function teardown(): Promise<void> {
  if (!startedHere || process.env.STSTEST_KEEP_RGW) return;
  startedHere = false;
  await stopRgw();
}
