/**
 * Benchmarks 3, 4 and 5: the `run` daemon's idle RSS and idle CPU against a bare waiting Node process,
 * and its RSS over thousands of refresh cycles against the STS stand-in with very short leases.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LocalStack } from '../test/stack/local-stack.ts';
import { startSidecar, type Launcher, type SidecarProcess } from '../test/support/sidecar-process.ts';
import { baseEnv } from './cold-start.ts';
import { cpuMs, cpuNsAllThreads, memoryKiB, resetPeak, rssKiB, wakeups } from './proc.ts';
import { median } from './stats.ts';

export const BARE_WAIT = 'setInterval(()=>{}, 1e9)';

interface Sample {
  readonly rssKiB: number;
  readonly anonKiB: number;
  readonly tickMs: number;
  readonly ns: number;
  readonly wakeups: number;
}

async function sample(pid: number): Promise<Sample> {
  const mem = await memoryKiB(pid);
  return {
    rssKiB: mem.rss,
    anonKiB: mem.anon,
    tickMs: await cpuMs(pid),
    ns: await cpuNsAllThreads(pid),
    wakeups: await wakeups(pid),
  };
}

export interface IdleResult {
  readonly daemonRssKiB: number[];
  readonly bareRssKiB: number[];
  /** RssAnon (private anonymous memory) at the start of the window. */
  readonly daemonAnonKiB: number[];
  readonly bareAnonKiB: number[];
  /** CPU per minute over the idle window: from /proc/<pid>/stat ticks (10 ms resolution) and schedstat (ns). */
  readonly daemonTickMsPerMin: number[];
  readonly daemonNsMsPerMin: number[];
  readonly daemonWakeupsPerMin: number[];
  readonly bareNsMsPerMin: number[];
  readonly bareWakeupsPerMin: number[];
  readonly windowSeconds: number;
}

export interface IdleFleet {
  /** RSS read once everything has settled. */
  readonly rss: { daemon: number[]; bare: number[] };
  /** Waits `windowMs` (the caller may run other benchmarks meanwhile) and returns the full result. */
  finish(windowMs: number): Promise<IdleResult>;
  /** After `finish`: refreshes every daemon once (SIGHUP), one after the other, and reads its peak memory. */
  refreshPeaks(): Promise<RefreshPeak[]>;
  close(): Promise<void>;
}

/**
 * Starts `count` daemons one after the other against `stack` (lease 3600 s), each with its own output
 * directory, waits for each one's first lease, starts `count` bare waiting Node processes, lets all
 * settle for `settleMs` and reads their RSS. The CPU window starts there.
 */
/** How a benchmarked daemon is started: Node flags, launcher, extra environment (e.g. MALLOC_ARENA_MAX). */
export interface DaemonStart {
  readonly nodeArgs?: readonly string[];
  readonly launcher?: Launcher;
  readonly env?: Readonly<Record<string, string>>;
  /** Label prefix for the processes (the secret scan's records). */
  readonly label?: string;
}

export async function startIdleFleet(
  stack: LocalStack,
  count: number,
  settleMs: number,
  start: DaemonStart = {},
): Promise<IdleFleet> {
  const daemons: SidecarProcess[] = [];
  const bare: ChildProcess[] = [];
  const close = async () => {
    for (const d of daemons) d.kill();
    for (const b of bare) b.kill();
    await Promise.all(daemons.map((d) => d.exited));
  };
  try {
    for (let i = 0; i < count; i++) {
      const label = `${start.label ?? 'idle'}-${i}`;
      const outputDir = path.join(stack.dir, label);
      await mkdir(outputDir, { recursive: true });
      const d = startSidecar(
        { ...stack.env, ...start.env, STS_SIDECAR_OUTPUT_DIR: outputDir, STS_SIDECAR_TTL_SECONDS: '3600' },
        ['run'],
        {
          label,
          nodeArgs: [...(start.nodeArgs ?? [])],
          ...(start.launcher ? { launcher: start.launcher } : {}),
        },
      );
      daemons.push(d);
      await d.waitForEvent('lease.acquired', 30_000);
    }
    for (let i = 0; i < count; i++) {
      bare.push(spawn(process.execPath, ['-e', BARE_WAIT], { env: baseEnv(), stdio: 'ignore' }));
    }
    await sleep(settleMs);
  } catch (err) {
    await close();
    throw err;
  }
  const dPids = daemons.map((d) => d.child.pid!);
  const bPids = bare.map((b) => b.pid!);
  const t0 = process.hrtime.bigint();
  const d0 = await Promise.all(dPids.map(sample));
  const b0 = await Promise.all(bPids.map(sample));
  return {
    rss: { daemon: d0.map((s) => s.rssKiB), bare: b0.map((s) => s.rssKiB) },
    async finish(windowMs: number) {
      const elapsed = Number(process.hrtime.bigint() - t0) / 1e6;
      if (elapsed < windowMs) await sleep(windowMs - elapsed);
      const d1 = await Promise.all(dPids.map(sample));
      const b1 = await Promise.all(bPids.map(sample));
      const minutes = Number(process.hrtime.bigint() - t0) / 1e9 / 60;
      for (const d of daemons) {
        if (d.lines.some((l) => l.event === 'lease.renewed' || l.event === 'lease.failed')) {
          throw new Error(
            'an idle daemon refreshed or failed during the idle window; the window is not idle',
          );
        }
      }
      const per = (a: Sample[], b: Sample[], f: (s: Sample) => number) =>
        a.map((s, i) => (f(b[i]!) - f(s)) / minutes);
      return {
        daemonRssKiB: d0.map((s) => s.rssKiB),
        bareRssKiB: b0.map((s) => s.rssKiB),
        daemonAnonKiB: d0.map((s) => s.anonKiB),
        bareAnonKiB: b0.map((s) => s.anonKiB),
        daemonTickMsPerMin: per(d0, d1, (s) => s.tickMs),
        daemonNsMsPerMin: per(d0, d1, (s) => s.ns / 1e6),
        daemonWakeupsPerMin: per(d0, d1, (s) => s.wakeups),
        bareNsMsPerMin: per(b0, b1, (s) => s.ns / 1e6),
        bareWakeupsPerMin: per(b0, b1, (s) => s.wakeups),
        windowSeconds: minutes * 60,
      };
    },
    async refreshPeaks() {
      const peaks: RefreshPeak[] = [];
      for (const d of daemons) peaks.push(await refreshPeak(d));
      return peaks;
    },
    close,
  };
}

/** Peak memory of one refresh, KiB: VmHWM (reset just before) and the highest RssAnon sampled. */
export interface RefreshPeak {
  readonly rssKiB: number;
  readonly anonKiB: number;
  /** Before the refresh. */
  readonly idleRssKiB: number;
  readonly idleAnonKiB: number;
}

/**
 * One refresh of an idle daemon (SIGHUP: the whole exchange and the write, as at every refresh): the
 * kernel's peak RSS (VmHWM, reset right before) and RssAnon read every millisecond until the new lease
 * is logged, then 200 ms more (the full GC after the write).
 */
export async function refreshPeak(d: SidecarProcess, timeoutMs = 30_000): Promise<RefreshPeak> {
  const pid = d.child.pid!;
  const before = await memoryKiB(pid);
  await resetPeak(pid);
  const from = d.lines.length;
  let anon = before.anon;
  let stop = false;
  const poll = (async () => {
    while (!stop) {
      anon = Math.max(anon, (await memoryKiB(pid)).anon);
      await sleep(1);
    }
  })();
  try {
    d.kill('SIGHUP');
    await d.waitForEvent('lease.renewed', timeoutMs, from);
    await sleep(200);
  } finally {
    stop = true;
    await poll;
  }
  const after = await memoryKiB(pid);
  return {
    rssKiB: after.hwm,
    anonKiB: Math.max(anon, after.anon),
    idleRssKiB: before.rss,
    idleAnonKiB: before.anon,
  };
}

export interface DriftResult {
  readonly cycles: number;
  readonly seconds: number;
  readonly leaseSeconds: number;
  /** Median RSS over the samples taken while the cycle count was in [500, 600). */
  readonly warmRssKiB: number;
  /** Median RSS over the samples of the last 200 cycles. */
  readonly endRssKiB: number;
  readonly peakRssKiB: number;
  readonly failures: number;
  readonly expiries: number;
  readonly curve: { cycle: number; rssKiB: number }[];
}

/**
 * Runs the daemon against the STS stand-in, which hands out `leaseSeconds` leases whatever is asked;
 * with REFRESH_FRACTION 0.1, jitter 0 and margin 0 the daemon refreshes 10 % into each lease, i.e. as fast
 * as exchanges complete. All of this is ordinary configuration: no product change is needed.
 */
export async function measureDrift(
  stack: LocalStack,
  cycles: number,
  leaseSeconds: number,
  how: DaemonStart = {},
  // A loaded 2-core machine manages about 20 cycles a second: 10,000 cycles take 8-9 minutes.
  timeoutMs = Math.max(420_000, cycles * 120),
): Promise<DriftResult> {
  const standIn = stack.standIn;
  if (!standIn) throw new Error('drift is measured against the STS stand-in');
  standIn.setLeaseSeconds(leaseSeconds);
  const outputDir = path.join(stack.dir, `drift-${Date.now()}`);
  await mkdir(outputDir, { recursive: true });
  const before = standIn.calls.length;
  const d = startSidecar(
    {
      ...stack.env,
      STS_SIDECAR_OUTPUT_DIR: outputDir,
      STS_SIDECAR_TTL_SECONDS: '60',
      STS_SIDECAR_STS_MIN_DURATION_SECONDS: '1',
      STS_SIDECAR_READY_MARGIN_SECONDS: '0',
      STS_SIDECAR_REFRESH_FRACTION: '0.1',
      STS_SIDECAR_REFRESH_JITTER: '0',
      ...how.env,
    },
    ['run'],
    {
      label: 'drift',
      nodeArgs: [...(how.nodeArgs ?? [])],
      ...(how.launcher ? { launcher: how.launcher } : {}),
    },
  );
  const curve: { cycle: number; rssKiB: number }[] = [];
  const start = Date.now();
  try {
    await d.waitForEvent('lease.acquired', 30_000);
    for (;;) {
      const cycle = standIn.calls.length - before;
      curve.push({ cycle, rssKiB: await rssKiB(d.child.pid!) });
      if (cycle >= cycles) break;
      if (Date.now() - start > timeoutMs)
        throw new Error(`drift: only ${cycle} of ${cycles} cycles in ${timeoutMs} ms`);
      await sleep(100);
    }
  } finally {
    d.kill();
    await d.exited;
  }
  const done = curve.at(-1)!.cycle;
  const warm = curve.filter((s) => s.cycle >= 500 && s.cycle < 600).map((s) => s.rssKiB);
  const end = curve.filter((s) => s.cycle >= done - 200).map((s) => s.rssKiB);
  return {
    cycles: done,
    seconds: (Date.now() - start) / 1000,
    leaseSeconds,
    warmRssKiB: median(warm),
    endRssKiB: median(end),
    peakRssKiB: Math.max(...curve.map((s) => s.rssKiB)),
    failures: d.lines.filter((l) => l.event === 'lease.failed').length,
    expiries: d.lines.filter((l) => l.event === 'lease.expired').length,
    curve,
  };
}
