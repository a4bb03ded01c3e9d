/**
 * `npm run bench`: the performance benchmarks of issue 6, all on loopback against the local stack
 * (real OIDC issuer, decision server, Ceph RGW or the STS stand-in). Prints a table and rewrites the
 * results section of docs/benchmarks.md. Every figure is a median of several runs; every comparison is
 * a ratio of two things measured in this same run.
 *
 *   node --experimental-strip-types bench/run.ts [--quick] [--no-docs] [--only=fleet|endpoint|<section name>]
 *                                                [--candidate-lease-loop=/path/to/lease-loop.ts]
 *
 * `--only=cold` runs only the cold-start rows, `--only=memory` only the idle and refresh-peak memory rows
 * (no CPU window): quick loops while working on either.
 * `--only=sts-latency` runs only the per-call STS latency of the real backends (bench/sts-latency.ts).
 * More benchmarks: write a BenchSection (bench/section.ts) and add it to SECTIONS below.
 */
import { access } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { isRgwUp, stopRgw } from '../test/stack/ceph-rgw.ts';
import { startLocalStack, type LocalStack } from '../test/stack/local-stack.ts';
import { BUNDLE, REPO_ROOT, SNAPSHOT_BLOB, startSidecar } from '../test/support/sidecar-process.ts';
import { COLD, measureColdStart } from './cold-start.ts';
import {
  measureDrift,
  startIdleFleet,
  type DaemonStart,
  type DriftResult,
  type IdleResult,
  type RefreshPeak,
} from './daemon.ts';
import { chartResourceRows } from './chart-resources.ts';
import { endpointRows } from './endpoint-rows.ts';
import { leasesMemorySection } from './leases-memory.ts';
import { measureProbes, medianOf, probe, startBareServer, type ProbeResult } from './probe.ts';
import type { BenchSection } from './section.ts';
import {
  DEFAULT_FLEET,
  runFleetScenario,
  type FleetScenario,
  type FleetSummary,
  type LeaseLoopClass,
} from './fleet-sim.ts';
import { IDENTITY, measureExchangeLatency } from './identity-exchange.ts';
import { markdownTable, terminalTable, writeResultsSection, type Row } from './report.ts';
import { median, spread } from './stats.ts';
import { measureStsLatency } from './sts-latency.ts';

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const option = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const QUICK = flag('quick');
const ONLY = option('only');
const CANDIDATE = option('candidate-lease-loop');

const P = QUICK
  ? {
      coldRuns: 3,
      idleCount: 2,
      settleMs: 20_000,
      idleWindowMs: 30_000,
      driftCycles: 1000,
      seeds: 2,
      probeBlocks: 3,
      probesPerBlock: 20,
      pacedProbes: 10,
    }
  : {
      coldRuns: 11,
      idleCount: 5,
      settleMs: 20_000,
      idleWindowMs: 180_000,
      driftCycles: 10_000,
      seeds: 7,
      probeBlocks: 7,
      probesPerBlock: 50,
      pacedProbes: 30,
    };
const DRIFT_LEASE_SECONDS = 0.2;
/** Issue 21: idle RssAnon of `run` in the image's configuration. */
const RSS_ANON_GOAL_KIB = 24 * 1024;
/** How the container image runs the sidecar (Dockerfile ENTRYPOINT and ENV): the code-cache fast start. */
const IMAGE: DaemonStart = {
  launcher: 'fast',
  nodeArgs: ['--max-semi-space-size=1'],
  env: { MALLOC_ARENA_MAX: '2' },
  label: 'image',
};
const IMAGE_DESC =
  'image: `node --max-semi-space-size=1 dist/sts-sidecar.cjs` (code cache), MALLOC_ARENA_MAX=2';
/** The image's Node flags alone, for benchmarks that run the plain bundle. */
const IMAGE_NODE_ARGS = [...(IMAGE.nodeArgs ?? [])];
/** The plain bundle as anyone runs it: `node dist/sts-sidecar.mjs run`, no flags. */
const PLAIN: DaemonStart = { launcher: 'bundle', label: 'plain' };
/** Round 2's image configuration, the startup snapshot, for its memory next to the code cache's. */
const SNAPSHOT: DaemonStart = {
  launcher: 'snapshot',
  nodeArgs: ['--max-semi-space-size=1'],
  env: { MALLOC_ARENA_MAX: '2' },
  label: 'snapshot',
};
const SNAPSHOT_DESC = 'startup snapshot, --max-semi-space-size=1, MALLOC_ARENA_MAX=2';

/** Benchmarks added by other modules; each appends its own rows and notes (bench/section.ts). */
const SECTIONS: BenchSection[] = [
  leasesMemorySection({
    launcher: IMAGE.launcher!,
    nodeArgs: IMAGE_NODE_ARGS,
    env: IMAGE.env!,
    description: IMAGE_DESC,
  }),
];

const log = (msg: string) =>
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const mb = (kib: number) => `${(kib / 1024).toFixed(1)} MB`;
const ms = (v: number) => `${v.toFixed(0)} ms`;
const x = (v: number) => `${v.toFixed(2)}x`;

/** Cold-start rows (issue 21: against the dependency-free floor of the same job, in the same run). */
async function coldRows(rgwStack: LocalStack, rows: Row[], notes: string[]): Promise<void> {
  log(`cold start: ${P.coldRuns} interleaved runs of each variant`);
  const cold = await measureColdStart(rgwStack, P.coldRuns, {
    nodeArgs: IMAGE.nodeArgs ?? [],
    env: IMAGE.env ?? {},
  });
  const s = (k: string) => cold.samples.get(k)!;
  const once = median(s(COLD.once));
  const snap = median(s(COLD.snapshotOnce));
  const fast = median(s(COLD.fastOnce));
  const node = median(s(COLD.node));
  const floor = median(s(COLD.floor));
  const aws = median(s(COLD.aws));
  rows.push({
    benchmark:
      'Cold start `once` to a complete set (RGW), shipped fast start (image: `node --max-semi-space-size=1 dist/sts-sidecar.cjs once`, code cache) vs the dependency-free floor of the same job (`node bench/floor-exchange.mjs`)',
    measured: ms(fast),
    baseline: ms(floor),
    ratio: `${x(fast / floor)} (own share ${ms(fast - floor)})`,
    goal: '<= 1.25x',
    met: fast / floor <= 1.25,
  });
  rows.push({
    benchmark: 'Same vs aws CLI script (1 STS call + 4 files, RGW)',
    measured: ms(fast),
    baseline: ms(aws),
    ratio: `${x(aws / fast)} faster`,
    goal: '>= 5x faster',
    met: aws / fast >= 5,
  });
  rows.push({
    benchmark: 'Same vs `node -e 0` (the yardstick of rounds 1 and 2)',
    measured: ms(fast),
    baseline: ms(node),
    ratio: x(fast / node),
    goal: '-',
    met: undefined,
  });
  rows.push({
    benchmark:
      "Cold start `once`, round 2's fast start: the startup snapshot (`node --snapshot-blob dist/sts-sidecar.blob -- once`) vs the floor",
    measured: ms(snap),
    baseline: ms(floor),
    ratio: `${x(snap / floor)} (code cache ${x(fast / snap)} of it)`,
    goal: '-',
    met: undefined,
  });
  rows.push({
    benchmark: 'Cold start `once`, plain bundle (`node dist/sts-sidecar.mjs once`) vs the floor',
    measured: ms(once),
    baseline: ms(floor),
    ratio: `${x(once / floor)} (code cache ${x(fast / once)} of it)`,
    goal: '-',
    met: undefined,
  });
  rows.push({
    benchmark: 'The floor script vs `node -e 0` (what the job itself costs: fetch, RGW, fsync)',
    measured: ms(floor),
    baseline: ms(node),
    ratio: `+${ms(floor - node)}`,
    goal: '-',
    met: undefined,
  });
  notes.push(
    `Cold start, ${P.coldRuns} interleaved runs each, median (min-max) ms: ` +
      [...cold.samples].map(([k, v]) => `${k} ${spread(v, 0)}`).join('; ') +
      `. Breakdown of the plain bundle's \`once\`: Node itself ${ms(node)}, loading and evaluating the bundle +${ms(median(s(COLD.version)) - node)}, ` +
      `config +${ms(median(s(COLD.checkConfig)) - median(s(COLD.version)))}, ` +
      `token + flex-auth + STS + write + exit +${ms(once - median(s(COLD.checkConfig)))}. ` +
      `Snapshot: deserialising instead of loading +${ms(median(s(COLD.snapshotVersion)) - node)}, the rest +${ms(snap - median(s(COLD.snapshotVersion)))}. ` +
      `Fast start (code cache): loading +${ms(median(s(COLD.fastVersion)) - node)}, the rest +${ms(fast - median(s(COLD.fastVersion)))}.`,
  );
}

interface IdleFleets {
  readonly idle: () => Promise<{ plain: IdleResult; image: IdleResult; snapshot: IdleResult }>;
  /** After `idle`: one refresh of every daemon, with its peak memory. */
  readonly peaks: () => Promise<{ plain: RefreshPeak[]; image: RefreshPeak[] }>;
  readonly probes: ProbeResult | undefined;
  readonly close: () => Promise<void>;
}

async function coldAndIdle(
  rows: Row[],
  notes: string[],
  parts: { cold: boolean; probes: boolean; windowMs: number },
): Promise<IdleFleets> {
  log('starting the local stack with Ceph RGW');
  const rgwStack = await startLocalStack({ sts: 'ceph-rgw' });
  const closers: (() => Promise<void>)[] = [() => rgwStack.close()];
  const close = async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  };
  try {
    if (parts.cold) await coldRows(rgwStack, rows, notes);

    log(
      `idle: ${P.idleCount} daemons each of the plain bundle (no flags) and the image configuration (lease 3600 s), ` +
        `${P.idleCount} bare waiting Node processes each, settling ${P.settleMs} ms`,
    );
    const plain = await startIdleFleet(rgwStack, P.idleCount, P.settleMs, PLAIN);
    closers.push(() => plain.close());
    const image = await startIdleFleet(rgwStack, P.idleCount, P.settleMs, IMAGE);
    closers.push(() => image.close());
    const snapshot = await startIdleFleet(rgwStack, P.idleCount, P.settleMs, SNAPSHOT);
    closers.push(() => snapshot.close());
    const fleets = {
      idle: async () => ({
        plain: await plain.finish(parts.windowMs),
        image: await image.finish(parts.windowMs),
        snapshot: await snapshot.finish(parts.windowMs),
      }),
      peaks: async () => ({ plain: await plain.refreshPeaks(), image: await image.refreshPeaks() }),
      close,
    };
    if (!parts.probes) return { ...fleets, probes: undefined };

    log(`probes: ${P.probeBlocks} interleaved blocks of ${P.probesPerBlock} kubelet-style probes per target`);
    const probed = startSidecar(
      { ...rgwStack.env, STS_SIDECAR_LISTEN: '127.0.0.1:0', STS_SIDECAR_TTL_SECONDS: '3600' },
      ['run'],
      { label: 'probed', launcher: 'bundle' },
    );
    closers.push(async () => {
      probed.kill();
      await probed.exited;
    });
    const started = await probed.waitForEvent('sidecar.started', 30_000);
    await probed.waitForEvent('lease.acquired', 30_000);
    const port = Number(String(started.listen).split(':').pop());
    const readyBytes = (await probe(port, '/readyz')).bytes;
    const bare = await startBareServer(readyBytes);
    closers.push(async () => {
      bare.child.kill();
    });
    const pid = probed.child.pid!;
    const probes = await measureProbes(
      [
        { name: 'readyz', pid, port, path: '/readyz' },
        { name: 'healthz', pid, port, path: '/healthz' },
        { name: 'bare', pid: bare.child.pid!, port: bare.port, path: '/readyz' },
      ],
      P.probeBlocks,
      P.probesPerBlock,
      { probes: P.pacedProbes, paceMs: 1000 },
    );
    return { ...fleets, probes };
  } catch (err) {
    await close();
    throw err;
  }
}

function probeRows(p: ProbeResult, rows: Row[], notes: string[]): void {
  const bare = medianOf(p, 'bare');
  for (const name of ['readyz', 'healthz']) {
    const v = medianOf(p, name);
    rows.push({
      benchmark: `CPU of one kubelet-style \`GET /${name}\` (new connection, Connection: close) vs a bare Node HTTP server, back-to-back probes`,
      measured: `${v.toFixed(3)} ms`,
      baseline: `${bare.toFixed(3)} ms`,
      ratio: x(v / bare),
      goal: '<= 2x',
      met: v / bare <= 2,
    });
  }
  // readyz and healthz alternate on one daemon: the paced figure is per probe of either kind.
  const pacedDaemon = p.pacedPerProbeMs.get('readyz') ?? Number.NaN;
  const pacedBare = p.pacedPerProbeMs.get('bare') ?? Number.NaN;
  rows.push({
    benchmark: `Same, paced like a kubelet (${p.paced.probes} rounds, one probe per target every ${p.paced.paceMs / 1000} s, CPU incl. the 10 s after; /readyz and /healthz alternate on the daemon)`,
    measured: `${pacedDaemon.toFixed(3)} ms`,
    baseline: `${pacedBare.toFixed(3)} ms`,
    ratio: x(pacedDaemon / pacedBare),
    goal: '<= 2x',
    met: pacedDaemon / pacedBare <= 2,
  });
  const r = medianOf(p, 'readyz');
  notes.push(
    `Probes: ${p.blocks} blocks of ${p.probesPerBlock} back-to-back probes per target, interleaved, after 20 untimed; CPU per probe from schedstat, ms: ` +
      [...p.perProbeMs].map(([k, v]) => `${k} ${spread(v, 3)}`).join('; ') +
      `. The first probe after start-up (lazy compilation): ` +
      [...p.firstProbeMs].map(([k, v]) => `${k} ${v.toFixed(2)} ms`).join(', ') +
      `. Wake-ups in the 10 s after the last block: ` +
      [...p.wakeupsAfter].map(([k, v]) => `${k} ${v}`).join(', ') +
      ` (the daemon serves both readyz and healthz). Paced: wake-ups per probe ` +
      [...p.pacedWakeupsPerProbe].map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ') +
      `. Chart defaults (readiness every 10 s, liveness every 30 s) at the paced cost: about ${((pacedDaemon * 60) / 10 + (pacedDaemon * 60) / 30).toFixed(2)} ms of CPU a minute (back-to-back cost: ${((r * 60) / 10 + (medianOf(p, 'healthz') * 60) / 30).toFixed(2)}).`,
  );
}

function idleRows(
  which: string,
  idle: IdleResult,
  rows: Row[],
  notes: string[],
  anonGoalKiB: number | undefined,
  cpu = true,
): void {
  const d = median(idle.daemonRssKiB);
  const b = median(idle.bareRssKiB);
  const da = median(idle.daemonAnonKiB);
  const ba = median(idle.bareAnonKiB);
  rows.push({
    benchmark: `Idle RssAnon (private memory: what one more pod costs) of \`run\` (${which}) after its first lease vs bare waiting Node`,
    measured: mb(da),
    baseline: mb(ba),
    ratio: `+${mb(da - ba)} own`,
    goal: anonGoalKiB === undefined ? '-' : `<= ${mb(anonGoalKiB)}`,
    met: anonGoalKiB === undefined ? undefined : da <= anonGoalKiB,
  });
  rows.push({
    benchmark: `Idle RSS of \`run\` (${which}) after its first lease vs bare waiting Node`,
    measured: mb(d),
    baseline: mb(b),
    ratio: x(d / b),
    goal: cpu ? '<= 1.5x' : '-',
    met: cpu ? d / b <= 1.5 : undefined,
  });
  const nsPerMin = median(idle.daemonNsMsPerMin);
  const wake = median(idle.daemonWakeupsPerMin);
  if (cpu && idle.windowSeconds >= 60) {
    rows.push({
      benchmark: `Wake-ups and CPU between refreshes (${which}, no probes, lease 3600 s, ${idle.windowSeconds.toFixed(0)} s window)`,
      measured: `${wake.toFixed(1)} wake-ups/min, ${nsPerMin.toFixed(3)} ms/min`,
      baseline: `${median(idle.bareWakeupsPerMin).toFixed(1)} wake-ups/min, ${median(idle.bareNsMsPerMin).toFixed(3)} ms/min (bare Node)`,
      ratio: `max ${Math.max(...idle.daemonWakeupsPerMin).toFixed(1)} wake-ups/min`,
      goal: '0 per minute; < 1 ms/min',
      met: Math.max(...idle.daemonWakeupsPerMin) === 0 && nsPerMin < 1,
    });
  }
  notes.push(
    `Idle (${which}): ${idle.daemonRssKiB.length} daemons and ${idle.bareRssKiB.length} bare processes; RSS MB daemon ${spread(idle.daemonRssKiB.map((k) => k / 1024))}, ` +
      `bare ${spread(idle.bareRssKiB.map((k) => k / 1024))}; RssAnon MB daemon ${spread(idle.daemonAnonKiB.map((k) => k / 1024))}, bare ${spread(idle.bareAnonKiB.map((k) => k / 1024))}. ` +
      `CPU from schedstat (ns, all threads) ms/min: daemon ${spread(idle.daemonNsMsPerMin, 3)}, ` +
      `bare ${spread(idle.bareNsMsPerMin, 3)}; from /proc/<pid>/stat utime+stime (10 ms ticks) ms/min: daemon ${spread(idle.daemonTickMsPerMin, 1)}. ` +
      `Wake-ups (context switches, all threads) per minute: daemon ${spread(idle.daemonWakeupsPerMin)}, bare ${spread(idle.bareWakeupsPerMin)}.`,
  );
}

/** The idle and refresh-peak rows of every configuration (issue 21). */
function memoryRows(
  idle: { plain: IdleResult; image: IdleResult; snapshot: IdleResult },
  peaks: { plain: RefreshPeak[]; image: RefreshPeak[] },
  rows: Row[],
  notes: string[],
): void {
  idleRows('plain bundle, no flags', idle.plain, rows, notes, undefined);
  idleRows(IMAGE_DESC, idle.image, rows, notes, RSS_ANON_GOAL_KIB);
  idleRows(SNAPSHOT_DESC, idle.snapshot, rows, notes, undefined, false);
  peakRows('plain bundle, no flags', peaks.plain, rows, notes);
  peakRows(IMAGE_DESC, peaks.image, rows, notes);
}

function peakRows(which: string, peaks: readonly RefreshPeak[], rows: Row[], notes: string[]): void {
  rows.push({
    benchmark: `Peak during a refresh (SIGHUP of an idle \`run\`, ${which}): RSS (VmHWM) / RssAnon, highest of ${peaks.length} daemons`,
    measured: `${mb(Math.max(...peaks.map((p) => p.rssKiB)))} / ${mb(Math.max(...peaks.map((p) => p.anonKiB)))}`,
    baseline: `${mb(median(peaks.map((p) => p.idleRssKiB)))} / ${mb(median(peaks.map((p) => p.idleAnonKiB)))} idle`,
    ratio: `+${mb(Math.max(...peaks.map((p) => p.rssKiB - p.idleRssKiB)))} RSS`,
    goal: '-',
    met: undefined,
  });
  notes.push(
    `Refresh peak (${which}): VmHWM reset before a SIGHUP, RssAnon read every millisecond until \`lease.renewed\` and 200 ms after; MB RSS ${spread(peaks.map((p) => p.rssKiB / 1024))}, RssAnon ${spread(peaks.map((p) => p.anonKiB / 1024))}.`,
  );
}

function driftRows(drift: DriftResult, rows: Row[], notes: string[]): void {
  const delta = (drift.endRssKiB - drift.warmRssKiB) / 1024;
  rows.push({
    benchmark: `RSS drift over ${drift.cycles} refresh cycles (stand-in, ${drift.leaseSeconds} s leases, ${IMAGE_DESC})`,
    measured: `${mb(drift.endRssKiB)} at end`,
    baseline: `${mb(drift.warmRssKiB)} at cycle ~500`,
    ratio: `${delta >= 0 ? '+' : ''}${delta.toFixed(1)} MB`,
    goal: '< 5 MB',
    met: delta < 5,
  });
  const pts = [0.05, 0.1, 0.25, 0.5, 0.75, 1].map(
    (f) => drift.curve.find((c) => c.cycle >= f * drift.cycles) ?? drift.curve.at(-1)!,
  );
  notes.push(
    `Drift: ${drift.cycles} cycles in ${drift.seconds.toFixed(0)} s (${(drift.cycles / drift.seconds).toFixed(0)} cycles/s), peak RSS ${mb(drift.peakRssKiB)}, ` +
      `${drift.failures} failed attempts, ${drift.expiries} lease expiries. RSS by cycle: ` +
      pts.map((p) => `${p.cycle}: ${mb(p.rssKiB)}`).join(', ') +
      `. Warm = median RSS while cycles 500-599 ran; end = median over the last 200 cycles. Started as in the ${IMAGE_DESC}.`,
  );
}

async function fleetRows(rows: Row[], notes: string[]): Promise<string> {
  const scenarios: { s: FleetScenario; loop?: LeaseLoopClass }[] = [
    { s: DEFAULT_FLEET },
    {
      s: {
        ...DEFAULT_FLEET,
        name: 'defaults, no failures (reference)',
        stsFailureRate: 0,
        outage: undefined,
      },
    },
    {
      s: {
        ...DEFAULT_FLEET,
        name: 'the 2-minute outage at the IdP instead of the STS',
        outage: { ...DEFAULT_FLEET.outage!, target: 'idp' },
      },
    },
    { s: { ...DEFAULT_FLEET, name: 'no IdP step', idp: undefined } },
    { s: { ...DEFAULT_FLEET, name: 'REFRESH_JITTER 0.5', refreshJitter: 0.5 } },
    { s: { ...DEFAULT_FLEET, name: '3 named leases per sidecar (issue 19)', leasesPerSidecar: 3 } },
  ];
  if (CANDIDATE) {
    const mod = (await import(pathToFileURL(path.resolve(CANDIDATE)).href)) as { LeaseLoop: LeaseLoopClass };
    scenarios.push({
      s: {
        ...DEFAULT_FLEET,
        name: `candidate LeaseLoop (${path.basename(path.dirname(path.dirname(CANDIDATE)))})`,
      },
      loop: mod.LeaseLoop,
    });
  }
  const results: FleetSummary[] = [];
  for (const { s, loop } of scenarios) {
    log(`fleet simulation: ${s.name}, ${s.sidecars} sidecars, ${P.seeds} seeds`);
    results.push(await runFleetScenario(s, P.seeds, loop));
  }
  const d = results[0]!;
  rows.push({
    benchmark: `Fleet of ${d.scenario.sidecars} (real LeaseLoop, virtual ${d.scenario.durationSeconds / 3600} h, 5 % failures + 2-minute STS outage): STS calls, 60 s peak/mean over the chance floor, after the start-up minute`,
    measured: `${d.afterStartupMinute60s.toFixed(2)} peak/mean`,
    baseline: `${d.uniformReferenceMinute60s.toFixed(2)} floor`,
    ratio: `${x(d.overFloorAfterStartupMinute60s)} the floor (incl. start-up minute ${x(d.overFloor60s)})`,
    goal: '<= 1.5x the floor',
    met: d.overFloorAfterStartupMinute60s <= 1.5,
  });
  rows.push({
    benchmark: 'Same, calls to the IdP (identity exchange before flex-auth, 5 % failures)',
    measured: `${d.idpAfterStartup60s.toFixed(2)} peak/mean`,
    baseline: `${d.idpUniformReference60s.toFixed(2)} floor`,
    ratio: `${x(d.idpOverFloor60s)} the floor`,
    goal: '<= 1.5x the floor',
    met: d.idpOverFloor60s <= 1.5,
  });
  const threeLeases = results.find((r) => (r.scenario.leasesPerSidecar ?? 1) === 3);
  if (threeLeases) {
    rows.push({
      benchmark: `Same with 3 named leases per sidecar (${threeLeases.scenario.sidecars} pods, one sidecar each): STS / IdP calls`,
      measured: `${threeLeases.afterStartupMinute60s.toFixed(2)} / ${threeLeases.idpAfterStartup60s.toFixed(2)} peak/mean`,
      baseline: `${threeLeases.uniformReferenceMinute60s.toFixed(2)} / ${threeLeases.idpUniformReference60s.toFixed(2)} floor`,
      ratio: `${x(threeLeases.overFloorAfterStartupMinute60s)} / ${x(threeLeases.idpOverFloor60s)} the floor`,
      goal: '<= 1.5x the floor',
      met: threeLeases.overFloorAfterStartupMinute60s <= 1.5 && threeLeases.idpOverFloor60s <= 1.5,
    });
  }
  const idpOutage = results.find((r) => r.scenario.outage?.target === 'idp');
  if (idpOutage) {
    rows.push({
      benchmark: 'Same with the 2-minute outage at the IdP instead: IdP calls / STS calls',
      measured: `${idpOutage.idpAfterStartup60s.toFixed(2)} / ${idpOutage.afterStartupMinute60s.toFixed(2)} peak/mean`,
      baseline: `${idpOutage.idpUniformReference60s.toFixed(2)} / ${idpOutage.uniformReferenceMinute60s.toFixed(2)} floor`,
      ratio: `${x(idpOutage.idpOverFloor60s)} / ${x(idpOutage.overFloorAfterStartupMinute60s)} the floor`,
      goal: '<= 1.5x the floor',
      met: idpOutage.idpOverFloor60s <= 1.5 && idpOutage.overFloorAfterStartupMinute60s <= 1.5,
    });
  }
  rows.push({
    benchmark: `Fleet, 1 s buckets (issue 6's figure): peak/mean STS calls excl. start-up second`,
    measured: `peak ${d.peakAfterStartup1s}/s`,
    baseline: `mean ${d.meanPerSecond.toFixed(2)}/s`,
    ratio: `${d.afterStartup1s.toFixed(1)} (floor ${d.uniformReference1s.toFixed(1)})`,
    goal: '-',
    met: undefined,
  });
  const head =
    '| Scenario | 1 s excl. start-up s | after 1st refresh wave (1 s) | 10 s buckets | 60 s buckets excl. start-up s / floor | 60 s excl. start-up minute / floor (over floor) | IdP 60 s excl. start-up minute / floor (over floor) | STS / IdP calls per sidecar-hour | lease expiries |\n|---|---|---|---|---|---|---|---|---|';
  const body = results.map(
    (r) =>
      `| ${r.scenario.name} | ${r.afterStartup1s.toFixed(1)} | ${r.afterFirstWave1s.toFixed(1)} | ${r.afterStartup10s.toFixed(1)} | ${r.afterStartup60s.toFixed(2)} / ${r.uniformReference60s.toFixed(2)} | ${r.afterStartupMinute60s.toFixed(2)} / ${r.uniformReferenceMinute60s.toFixed(2)} (${x(r.overFloorAfterStartupMinute60s)}) | ${r.idpAfterStartup60s.toFixed(2)} / ${r.idpUniformReference60s.toFixed(2)} (${x(r.idpOverFloor60s)}) | ${r.callsPerSidecarHour.toFixed(2)} / ${r.idpCallsPerSidecarHour.toFixed(2)} | ${r.expiries} |`,
  );
  notes.push(
    `Fleet: ${d.scenario.sidecars} sidecars started within 1 s, TTL ${d.scenario.ttlSeconds} s, fraction ${d.scenario.refreshFraction}, jitter ${d.scenario.refreshJitter}, ` +
      `margin ${d.scenario.readyMarginSeconds} s, backoff ${d.scenario.backoffInitialSeconds}-${d.scenario.backoffMaxSeconds} s, IdP step failing ${(d.scenario.idp?.failureRate ?? 0) * 100} % at random, STS fails ${d.scenario.stsFailureRate * 100} % at random ` +
      `and not at all from ${d.scenario.outage?.startSeconds} s for ${d.scenario.outage?.lengthSeconds} s; medians over ${P.seeds} seeds; ` +
      `peak second (excl. start-up) per seed: ${d.peakAtSeconds.join(', ')}.`,
  );
  return [head, ...body].join('\n');
}

/** Issue 9: `--only=identity` (needs Keycloak: bash test/stack/keycloak.sh install). */
async function identityRows(rows: Row[], notes: string[]): Promise<void> {
  const runs = QUICK ? 3 : 11;
  log(`identity exchange: ${runs} interleaved \`once\` runs, direct and through Keycloak`);
  const samples = await measureExchangeLatency(runs);
  const direct = median(samples.get(IDENTITY.direct)!);
  const keycloak = median(samples.get(IDENTITY.keycloak)!);
  rows.push({
    benchmark: '`once` with the Keycloak exchange vs without (RGW)',
    measured: ms(keycloak),
    baseline: ms(direct),
    ratio: `+${ms(keycloak - direct)}`,
    goal: 'report',
    met: true,
  });
  notes.push(
    `Identity exchange, ${runs} interleaved runs each, median (min-max) ms: ` +
      [...samples].map(([k, v]) => `${k} ${spread(v, 0)}`).join('; ') +
      '.',
  );
}

const STS_LATENCY_CALLS = QUICK ? 10 : 30;

async function stsLatencyRows(rows: Row[], notes: string[]): Promise<void> {
  log(`STS latency: ${STS_LATENCY_CALLS} AssumeRoleWithWebIdentity calls per backend, interleaved`);
  const r = await measureStsLatency(STS_LATENCY_CALLS);
  for (const [name, v] of r.samples) {
    rows.push({
      benchmark: `AssumeRoleWithWebIdentity per call, ${name} (sidecar's STS adapter, session policy, loopback)`,
      measured: `${median(v).toFixed(1)} ms`,
      baseline: '-',
      ratio: `${spread(v, 1)} ms`,
      goal: '-',
      met: undefined,
    });
  }
  const [[firstName, first] = []] = [...r.samples];
  if (first && r.samples.size > 1) {
    const ratios = [...r.samples]
      .slice(1)
      .map(([name, v]) => `${name}/${firstName} ${(median(v) / median(first)).toFixed(2)}`);
    notes.push(
      `STS latency: ${STS_LATENCY_CALLS} calls per backend after ${r.warmup} warm-up calls each, interleaved; median ratios ${ratios.join(', ')}.`,
    );
  }
  for (const [name, reason] of r.unavailable) notes.push(`STS latency: ${name} not measured: ${reason}.`);
}

async function main(): Promise<void> {
  await access(BUNDLE).catch(() => {
    throw new Error(`${BUNDLE} is missing: run \`npm run build\` (npm run bench does)`);
  });
  if (ONLY === 'identity') {
    const rows: Row[] = [];
    const notes: string[] = [];
    const rgwWasUp = await isRgwUp();
    try {
      await identityRows(rows, notes);
    } finally {
      if (!rgwWasUp && !process.env.STSTEST_KEEP_RGW) await stopRgw();
    }
    process.stdout.write(`\n${terminalTable(rows)}\n\n${notes.map((n) => `- ${n}`).join('\n')}\n`);
    return;
  }
  const started = Date.now();
  // The machine is shared: its load before the run goes with every result (ratios within a run count).
  const loadBefore = os.loadavg();
  const rows: Row[] = [];
  const notes: string[] = [];
  // Leave the machine as found: stop the Ceph stack afterwards only if this run started it.
  const rgwWasUp = await isRgwUp();
  await access(SNAPSHOT_BLOB).catch(() => {
    throw new Error(`${SNAPSHOT_BLOB} is missing: run \`npm run build\` (npm run bench does)`);
  });
  if (ONLY === 'cold' || ONLY === 'memory') {
    // Quick loops while working on start-up or memory: the same measurements as the full run, alone.
    try {
      if (ONLY === 'cold') {
        const stack = await startLocalStack({ sts: 'ceph-rgw' });
        try {
          await coldRows(stack, rows, notes);
        } finally {
          await stack.close();
        }
      } else {
        const rgw = await coldAndIdle(rows, notes, { cold: false, probes: false, windowMs: 0 });
        try {
          const idle = await rgw.idle();
          const peaks = await rgw.peaks();
          memoryRows(idle, peaks, rows, notes);
        } finally {
          await rgw.close();
        }
      }
    } finally {
      if (!rgwWasUp && !process.env.STSTEST_KEEP_RGW) await stopRgw();
    }
  }
  if (ONLY === undefined) {
    const rgw = await coldAndIdle(rows, notes, { cold: true, probes: true, windowMs: P.idleWindowMs }).catch(
      async (err: unknown) => {
        if (!rgwWasUp) await stopRgw();
        throw err;
      },
    );
    // The idle window ends P.idleWindowMs after it started, while the drift still runs: a longer window
    // would reach the idle daemons' first refresh (from 360 s on with a 3600 s lease).
    const idleDone = rgw.idle().then(
      (r) => ({ ok: true as const, r }),
      (err: unknown) => ({ ok: false as const, err }),
    );
    try {
      log('starting the local stack with the STS stand-in');
      const standInStack = await startLocalStack({ sts: 'stand-in', minDurationSeconds: 1 });
      let drift: DriftResult;
      try {
        log(
          `drift: ${P.driftCycles} refresh cycles with ${DRIFT_LEASE_SECONDS} s leases (idle daemons keep idling meanwhile)`,
        );
        drift = await measureDrift(standInStack, P.driftCycles, DRIFT_LEASE_SECONDS, IMAGE);
      } finally {
        await standInStack.close();
      }
      log('waiting for the end of the idle CPU window');
      const settled = await idleDone;
      if (!settled.ok) throw settled.err;
      const idle = settled.r;
      log('refresh peaks: one SIGHUP refresh per idle daemon');
      const peaks = await rgw.peaks();
      memoryRows(idle, peaks, rows, notes);
      await chartResourceRows(peaks.image, drift, rows, notes);
      probeRows(rgw.probes!, rows, notes);
      driftRows(drift, rows, notes);
    } finally {
      await rgw.close();
      if (!rgwWasUp && !process.env.STSTEST_KEEP_RGW) await stopRgw();
    }
  }
  if (ONLY === undefined || ONLY === 'endpoint')
    await endpointRows(rows, notes, { quick: QUICK, log, nodeArgs: IMAGE_NODE_ARGS });
  const fleetTable = ONLY === undefined || ONLY === 'fleet' ? await fleetRows(rows, notes) : '';
  if (ONLY === undefined || ONLY === 'sts-latency') {
    try {
      // A backend that cannot start here must not cost the rest of the run its results.
      await stsLatencyRows(rows, notes).catch((err: unknown) =>
        notes.push(`STS latency: not measured: ${(err as Error).message.split('\n')[0]}.`),
      );
    } finally {
      if (!rgwWasUp && !process.env.STSTEST_KEEP_RGW) await stopRgw();
    }
  }
  for (const section of SECTIONS) {
    if (ONLY !== undefined && ONLY !== section.name) continue;
    log(`section: ${section.name}`);
    await section.run({ rows, notes, quick: QUICK, log });
  }

  const command = `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`;
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const machine =
    `Machine: ${os.availableParallelism()} CPUs (nproc; ${cpu}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB memory, ` +
    `${os.type()} ${os.release()}; Node ${process.version}; ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; ` +
    `command \`${command}\` (${((Date.now() - started) / 1000).toFixed(0)} s)${QUICK ? ' (QUICK: too few runs to quote)' : ''}; ` +
    `load average before the run ${loadBefore.map((l) => l.toFixed(2)).join(' / ')} (1 / 5 / 15 min), after ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' / ')}.`;
  const section = [
    machine,
    markdownTable(rows),
    '### Fleet simulation: peak over mean STS calls',
    fleetTable,
    '### Details',
    ...notes.map((n) => `- ${n}`),
  ].join('\n\n');

  process.stdout.write(
    `\n${machine}\n\n${terminalTable(rows)}\n\n${fleetTable}\n\n${notes.map((n) => `- ${n}`).join('\n')}\n`,
  );
  if (!flag('no-docs') && !ONLY) {
    const doc = path.join(REPO_ROOT, 'docs', 'benchmarks.md');
    await writeResultsSection(doc, section);
    log(`wrote the results section of ${doc}`);
  }
}

await main();
