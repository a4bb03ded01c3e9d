/**
 * vitest globalSetup: brings the kube-apiserver stack (etcd + kube-apiserver) up once for the whole run when
 * it is usable, so test files only find it running. With STSTEST_REQUIRE_KUBE=1 an unusable stack fails the
 * run. teardown() stops it only if this setup started it, unless STSTEST_KEEP_KUBE is set.
 */
import { ensureKube, isKubeUp, kubeUsable, stopKube } from './kube.ts';

let startedHere = false;

export async function setup(): Promise<void> {
  const usable = kubeUsable();
  if ('reason' in usable) {
    if (process.env.STSTEST_REQUIRE_KUBE === '1') {
      throw new Error(`STSTEST_REQUIRE_KUBE=1 but the kube-apiserver stack is unusable: ${usable.reason}`);
    }
    console.warn(`[kube-global-setup] kube-apiserver not started: ${usable.reason}`);
    return;
  }
  const wasUp = await isKubeUp();
  const t0 = Date.now();
  const stack = await ensureKube();
  startedHere = !wasUp;
  console.info(
    `[kube-global-setup] kube-apiserver ${stack.version} ${wasUp ? 'already running' : `started in ${Date.now() - t0} ms`} at ${stack.url}`,
  );
}

export async function teardown(): Promise<void> {
  if (!startedHere || process.env.STSTEST_KEEP_KUBE) return;
  startedHere = false;
  await stopKube();
}
