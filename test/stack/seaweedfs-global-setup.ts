/**
 * vitest globalSetup: brings the SeaweedFS stack (test/stack/seaweedfs.sh) up once for the whole run when
 * `weed` is built here. With STSTEST_REQUIRE_SEAWEEDFS=1 an unusable stack fails the run. teardown() stops
 * the stack only if this setup started it, unless STSTEST_KEEP_SEAWEEDFS is set.
 */
import { ensureSeaweedfs, isSeaweedfsUp, seaweedfsUsable, stopSeaweedfs } from './seaweedfs.ts';

let startedHere = false;

export async function setup(): Promise<void> {
  const usable = seaweedfsUsable();
  if ('reason' in usable) {
    if (process.env.STSTEST_REQUIRE_SEAWEEDFS === '1') {
      throw new Error(`STSTEST_REQUIRE_SEAWEEDFS=1 but the SeaweedFS stack is unusable: ${usable.reason}`);
    }
    console.warn(`[seaweedfs-global-setup] SeaweedFS stack not started: ${usable.reason}`);
    return;
  }
  const wasUp = await isSeaweedfsUp();
  const t0 = Date.now();
  const stack = await ensureSeaweedfs();
  startedHere = !wasUp;
  console.info(
    `[seaweedfs-global-setup] SeaweedFS ${stack.version} ${wasUp ? 'already running' : `started in ${Date.now() - t0} ms`} at ${stack.endpoint}`,
  );
}

export async function teardown(): Promise<void> {
  if (!startedHere || process.env.STSTEST_KEEP_SEAWEEDFS) return;
  startedHere = false;
  await stopSeaweedfs();
}
