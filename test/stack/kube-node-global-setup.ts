/**
 * vitest globalSetup: brings the node stack up once for the whole run when it is usable (after
 * kube-global-setup started the API server), imports the sidecar image built without Docker
 * (scripts/build-image.sh) into its containerd, and serves the API server's issuer discovery with the x5c
 * JWKS Ceph RGW needs (test/stack/kube-issuer.ts) on the issuer URL for the whole run. With
 * STSTEST_REQUIRE_NODE=1 an unusable node fails the run. teardown() stops the node only if this setup
 * started it, unless STSTEST_KEEP_NODE is set; when `down` finds anything left behind (a process, cgroup,
 * mount or sysctl: kube-node.sh leftovers) the run fails, once the other stacks' teardowns have run.
 */
import { join } from 'node:path';
import type { OidcIssuer } from './oidc-issuer.ts';
import { readStack } from './kube.ts';
import { kubeIssuerServed, startKubeIssuer } from './kube-issuer.ts';
import { ensureNode, importImage, isNodeUp, NODE_STACK_DIR, nodeUsable, stopNode } from './kube-node.ts';
import { runCommand } from './stack-script.ts';
import { SIDECAR_IMAGE } from './node-images.ts';
import { ensureRgw, rgwUsable } from './ceph-rgw.ts';
import { trustKubeIssuer } from '../node/support.ts';
import { deferTeardownError } from '../support/teardown-errors.ts';

let startedHere = false;
let issuer: OidcIssuer | undefined;

export async function setup(): Promise<void> {
  const usable = nodeUsable();
  if ('reason' in usable) {
    if (process.env.STSTEST_REQUIRE_NODE === '1')
      throw new Error(`STSTEST_REQUIRE_NODE=1 but the node stack is unusable: ${usable.reason}`);
    console.warn(`[kube-node-global-setup] node not started: ${usable.reason}`);
    return;
  }
  const wasUp = await isNodeUp();
  const t0 = Date.now();
  const node = await ensureNode();
  startedHere = !wasUp;
  const t1 = Date.now();
  const archive = join(NODE_STACK_DIR, 'images', 'sidecar.tar');
  await runCommand('bash', ['scripts/build-image.sh', '--out', archive, '--name', SIDECAR_IMAGE], {
    timeoutMs: 300_000,
  });
  await importImage(archive);
  const kube = readStack();
  issuer = await startKubeIssuer(kube).catch(async (err: NodeJS.ErrnoException) => {
    // Another vitest run of this checkout serves it already (for the same API server key): share it.
    if (err.code !== 'EADDRINUSE' || !(await kubeIssuerServed(kube))) throw err;
    return undefined;
  });
  if (rgwUsable().ok) await trustKubeIssuer(await ensureRgw(), kube.issuer);
  console.info(
    `[kube-node-global-setup] node ${node.nodeName} ${wasUp ? 'already running' : `started in ${t1 - t0} ms`}; ` +
      `sidecar image built and imported in ${Date.now() - t1} ms; issuer discovery at ${kube.issuer}${issuer ? '' : ' (served by another run)'}`,
  );
}

export async function teardown(): Promise<void> {
  await issuer?.close();
  issuer = undefined;
  if (!startedHere || process.env.STSTEST_KEEP_NODE) return;
  startedHere = false;
  await stopNode().catch((err: unknown) => deferTeardownError(err as Error));
}
