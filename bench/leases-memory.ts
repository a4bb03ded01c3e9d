/**
 * Issue 19: idle memory of one sidecar keeping 3 named leases against 3 single-lease sidecars, measured in
 * one run on the same stack (the real Ceph RGW when usable, else the STS stand-in), started as the image
 * starts the sidecar. Rounds interleave the two so machine noise hits both.
 *   npm run bench -- --only=leases
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startLocalStack, type LocalStack } from '../test/stack/local-stack.ts';
import { namedLeasesEnv } from '../test/support/named-leases.ts';
import { startSidecar, type Launcher, type SidecarProcess } from '../test/support/sidecar-process.ts';
import { rssKiB } from './proc.ts';
import type { BenchSection } from './section.ts';
import { median, spread } from './stats.ts';

const LEASES = ['alpha', 'beta', 'gamma'] as const;

export interface LeasesMemoryStart {
  readonly launcher: Launcher;
  readonly nodeArgs: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly description: string;
}

function start(stack: LocalStack, s: LeasesMemoryStart, env: Record<string, string>, label: string) {
  return startSidecar({ ...stack.env, ...s.env, STS_SIDECAR_TTL_SECONDS: '3600', ...env }, ['run'], {
    label,
    launcher: s.launcher,
    nodeArgs: [...s.nodeArgs],
  });
}

/** One round: the 3-lease sidecar and 3 single-lease ones side by side; RSS once all have settled. */
async function round(
  stack: LocalStack,
  s: LeasesMemoryStart,
  r: number,
  settleMs: number,
): Promise<{ three: number; singles: number[] }> {
  const dir = path.join(stack.dir, `leases-bench-${r}`);
  await mkdir(dir, { recursive: true });
  const shared = await namedLeasesEnv(
    stack.env,
    dir,
    LEASES.map((name) => ({
      name,
      bucket: stack.bucket,
      prefix: `${stack.prefix}${name}/`,
      actions: ['read'],
    })),
  );
  const procs: SidecarProcess[] = [];
  try {
    await mkdir(path.join(dir, 'three'), { recursive: true });
    const three = startSidecar(
      {
        ...shared,
        ...s.env,
        STS_SIDECAR_OUTPUT_DIR: path.join(dir, 'three'),
      },
      ['run'],
      { label: `leases-three-${r}`, launcher: s.launcher, nodeArgs: [...s.nodeArgs] },
    );
    procs.push(three);
    for (const name of LEASES)
      await three.waitFor(
        (l) => l.event === 'lease.acquired' && l.lease === name,
        30_000,
        `${name} acquired`,
      );
    for (const name of LEASES) {
      const out = path.join(dir, `single-${name}`);
      await mkdir(out, { recursive: true });
      const single = start(
        stack,
        s,
        {
          STS_SIDECAR_OUTPUT_DIR: out,
          STS_SIDECAR_PREFIX: `${stack.prefix}${name}/`,
          STS_SIDECAR_ACTIONS: 'read',
        },
        `leases-single-${name}-${r}`,
      );
      procs.push(single);
      await single.waitForEvent('lease.acquired', 30_000);
    }
    await sleep(settleMs);
    const rss = await Promise.all(procs.map((p) => rssKiB(p.child.pid!)));
    return { three: rss[0]!, singles: rss.slice(1) };
  } finally {
    for (const p of procs) p.kill();
    await Promise.all(procs.map((p) => p.exited));
  }
}

export function leasesMemorySection(s: LeasesMemoryStart): BenchSection {
  return {
    name: 'leases',
    async run({ rows, notes, quick, log }) {
      const rounds = quick ? 1 : 5;
      const settleMs = 20_000;
      const stack = await startLocalStack({ sts: 'auto' });
      try {
        const three: number[] = [];
        const singles: number[] = [];
        const sums: number[] = [];
        for (let r = 0; r < rounds; r++) {
          log(`leases memory: round ${r + 1}/${rounds} (${stack.stsKind})`);
          const m = await round(stack, s, r, settleMs);
          three.push(m.three);
          singles.push(...m.singles);
          sums.push(m.singles.reduce((a, b) => a + b, 0));
        }
        const mb = (kib: number) => `${(kib / 1024).toFixed(1)} MB`;
        const ratio = median(three) / median(sums);
        rows.push({
          benchmark: `Idle RSS: one sidecar with 3 named leases vs 3 single-lease sidecars (${stack.stsKind}, ${s.description})`,
          measured: mb(median(three)),
          baseline: `${mb(median(sums))} (3 x ${mb(median(singles))})`,
          ratio: `${(ratio * 100).toFixed(0)} % of it (saves ${mb(median(sums) - median(three))} per pod)`,
          goal: '-',
          met: undefined,
        });
        notes.push(
          `Leases memory: ${rounds} rounds, each the 3-lease sidecar and 3 single-lease sidecars side by side on one ` +
            `${stack.stsKind} stack (lease 3600 s, ${settleMs / 1000} s settle after the last first lease), RSS from /proc; ` +
            `3-lease sidecar ${spread(
              three.map((k) => k / 1024),
              1,
            )} MB, single-lease sidecar ${spread(
              singles.map((k) => k / 1024),
              1,
            )} MB ` +
            `(median (min-max)).`,
        );
      } finally {
        await stack.close();
      }
    },
  };
}
