/**
 * The sidecar's memory as Kubernetes counts it, in a real pod: the container cgroup's working set (usage
 * minus inactive file, what the kubelet reports and evicts on), sampled from pod creation through its first
 * set and then idle, beside a bare `node` container (the same image, `node -e` with an idle timer) in the
 * same run. The chart's limit is 128 Mi: the sidecar must stay under it at its peak. The numbers are printed
 * for docs/benchmarks.md.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerMemoryCgroup, nodeGate, skipNode, workingSetBytes } from '../stack/kube-node.ts';
import { SIDECAR_IMAGE } from '../stack/node-images.ts';
import {
  containerStatus,
  onThisNode,
  podReady,
  SIDECAR_CONTAINER,
  startPodStack,
  type Obj,
  type PodStack,
} from './support.ts';

const gate = nodeGate('test/node/pod-memory.test.ts');
const MiB = 1024 * 1024;

describe.skipIf(skipNode)(`the sidecar's working set in a real pod${gate}`, () => {
  let s: PodStack;
  beforeAll(async () => {
    s = await startPodStack('pods-memory');
  }, 300_000);
  afterAll(async () => {
    await s?.close();
  });

  it('stays under the chart limit (128 Mi) at its peak and idle; a bare node container beside it for scale', async () => {
    const bare = onThisNode({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'bare-node', labels: { 'app.kubernetes.io/instance': 'bare' } },
      spec: {
        containers: [
          {
            name: 'node',
            image: SIDECAR_IMAGE,
            imagePullPolicy: 'Never',
            command: ['/nodejs/bin/node', '-e', 'setInterval(() => {}, 1 << 30)'],
            securityContext: { runAsUser: 65532, readOnlyRootFilesystem: true },
          },
        ],
      },
    });
    const created = await s.kube.create(bare, s.namespace, { dryRun: false });
    expect(created.status).toBe(201);
    await s.install('memory', await s.values());

    // Sample every 200 ms from creation until 20 s after Ready.
    const samples: number[] = [];
    let cgroup: string | undefined;
    let readyAt: number | undefined;
    const t0 = Date.now();
    while (readyAt === undefined || Date.now() - readyAt < 20_000) {
      if (Date.now() - t0 > 150_000) throw new Error('the pod was not Ready in 150 s');
      const [pod] = await s.pods('memory');
      if (pod && !cgroup) {
        const id = String(containerStatus(pod, SIDECAR_CONTAINER)?.containerID ?? '').replace(
          /^\w+:\/\//,
          '',
        );
        if (id) cgroup = containerMemoryCgroup(s.node, String((pod.metadata as Obj).uid), id);
      }
      if (cgroup) samples.push(workingSetBytes(cgroup));
      if (pod && readyAt === undefined && podReady(pod)) readyAt = Date.now();
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(cgroup, 'the sidecar container cgroup').toBeDefined();
    const peak = Math.max(...samples);
    // Idle: after the first set, a minute of nothing to do.
    await new Promise((r) => setTimeout(r, 40_000));
    const idle = workingSetBytes(cgroup ?? '');
    const bareNow = (await s.pods('bare'))[0];
    const bareId = String(containerStatus(bareNow ?? {}, 'node')?.containerID ?? '').replace(/^\w+:\/\//, '');
    const bareSet = workingSetBytes(
      containerMemoryCgroup(s.node, String((bareNow?.metadata as Obj | undefined)?.uid), bareId),
    );
    console.info(
      `[pod-memory] working set: sidecar peak ${(peak / MiB).toFixed(1)} MiB (${samples.length} samples), ` +
        `sidecar idle ${(idle / MiB).toFixed(1)} MiB, bare node ${(bareSet / MiB).toFixed(1)} MiB`,
    );
    expect(peak).toBeGreaterThan(bareSet / 2);
    expect(peak).toBeLessThan(128 * MiB);
    expect(idle).toBeLessThan(128 * MiB);
  }, 300_000);
});
