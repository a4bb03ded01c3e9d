/**
 * `npm run bench`: the performance benchmarks of issue 6, all on loopback against the local stack
 * (real OIDC issuer, decision server, Ceph RGW or the STS stand-in). Prints a table and rewrites the
 * results section of docs/benchmarks.md. Every figure is a median of several runs; every comparison is
 * a ratio of two things measured in this same run.
 *
 *   node --experimental-strip-types bench/run.ts [--quick] [--no-docs] [--only=fleet|endpoint]
 *                                                [--candidate-lease-loop=/path/to/lease-loop.ts]
 *
 * `--only=sts-latency` runs only the per-call STS latency of the real backends (bench/sts-latency.ts).
 */
import { access } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { isRgwUp, stopRgw } from '../test/stack/ceph-rgw.ts';
import { startLocalStack } from '../test/stack/local-stack.ts';
import { BUNDLE, REPO_ROOT } from '../test/support/sidecar-process.ts';
import { COLD, measureColdStart } from './cold-start.ts';
import { measureDrift, startIdleFleet, type DriftResult, type IdleResult } from './daemon.ts';
import { endpointRows } from './endpoint-rows.ts';
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
  ? { coldRuns: 3, idleCount: 2, settleMs: 3000, idleWindowMs: 20_000, driftCycles: 1000, seeds: 2 }
  : { coldRuns: 11, idleCount: 7, settleMs: 5000, idleWindowMs: 120_000, driftCycles: 10_000, seeds: 7 };
const DRIFT_LEASE_SECONDS = 0.2;
/** The Node flags the container image's ENTRYPOINT runs the sidecar with (Dockerfile). */
const IMAGE_NODE_ARGS = ['--max-semi-space-size=1', '--no-memory-reducer'];

const log = (msg: string) =>
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const mb = (kib: number) => `${(kib / 1024).toFixed(1)} MB`;
const ms = (v: number) => `${v.toFixed(0)} ms`;
const x = (v: number) => `${v.toFixed(2)}x`;

async function coldAndIdle(
  rows: Row[],
  notes: string[],
): Promise<{ idle: () => Promise<IdleResult>; close: () => Promise<void> }> {
  log('starting the local stack with Ceph RGW');
  const rgwStack = await startLocalStack({ sts: 'ceph-rgw' });
  try {
    log(`cold start: ${P.coldRuns} interleaved runs of each variant`);
    const cold = await measureColdStart(rgwStack, P.coldRuns);
    const s = (k: string) => cold.samples.get(k)!;
    const once = median(s(COLD.once));
    const node = median(s(COLD.node));
    const aws = median(s(COLD.aws));
    rows.push({
      benchmark: 'Cold start `once` to a complete set (RGW) vs `node -e 0`',
      measured: ms(once),
      baseline: ms(node),
      ratio: x(once / node),
      goal: '<= 2x',
      met: once / node <= 2,
    });
    rows.push({
      benchmark: 'Same vs aws CLI script (1 STS call + 4 files, RGW)',
      measured: ms(once),
      baseline: ms(aws),
      ratio: `${x(aws / once)} faster`,
      goal: '>= 5x faster',
      met: aws / once >= 5,
    });
    notes.push(
      `Cold start, ${P.coldRuns} interleaved runs each, median (min-max) ms: ` +
        [...cold.samples].map(([k, v]) => `${k} ${spread(v, 0)}`).join('; ') +
        `. Breakdown of \`once\`: Node itself ${ms(node)}, loading and evaluating the bundle +${ms(median(s(COLD.version)) - node)}, ` +
        `config +${ms(median(s(COLD.checkConfig)) - median(s(COLD.version)))}, ` +
        `token + flex-auth + STS + write + exit +${ms(once - median(s(COLD.checkConfig)))}.`,
    );

    log(
      `idle: ${P.idleCount} daemons (lease 3600 s) and ${P.idleCount} bare waiting Node processes, settling ${P.settleMs} ms`,
    );
    const fleet = await startIdleFleet(rgwStack, P.idleCount, P.settleMs, IMAGE_NODE_ARGS);
    return {
      idle: () => fleet.finish(P.idleWindowMs),
      close: async () => {
        await fleet.close();
        await rgwStack.close();
      },
    };
  } catch (err) {
    await rgwStack.close();
    throw err;
  }
}

function idleRows(idle: IdleResult, rows: Row[], notes: string[]): void {
  const d = median(idle.daemonRssKiB);
  const b = median(idle.bareRssKiB);
  rows.push({
    benchmark: `Idle RSS of \`run\` (node ${IMAGE_NODE_ARGS.join(' ')}, as in the image) after its first lease vs bare waiting Node`,
    measured: mb(d),
    baseline: mb(b),
    ratio: x(d / b),
    goal: '<= 1.3x',
    met: d / b <= 1.3,
  });
  const nsPerMin = median(idle.daemonNsMsPerMin);
  rows.push({
    benchmark: `Idle CPU between refreshes (image flags, lease 3600 s, ${idle.windowSeconds.toFixed(0)} s window)`,
    measured: `${nsPerMin.toFixed(3)} ms/min`,
    baseline: `${median(idle.bareNsMsPerMin).toFixed(3)} ms/min (bare Node)`,
    ratio: `${median(idle.daemonWakeupsPerMin).toFixed(1)} wake-ups/min`,
    goal: '< 1 ms/min',
    met: nsPerMin < 1,
  });
  notes.push(
    `Idle: ${idle.daemonRssKiB.length} daemons and ${idle.bareRssKiB.length} bare processes; RSS MB daemon ${spread(idle.daemonRssKiB.map((k) => k / 1024))}, ` +
      `bare ${spread(idle.bareRssKiB.map((k) => k / 1024))}. CPU from schedstat (ns, all threads) ms/min: daemon ${spread(idle.daemonNsMsPerMin, 3)}, ` +
      `bare ${spread(idle.bareNsMsPerMin, 3)}; from /proc/<pid>/stat utime+stime (10 ms ticks) ms/min: daemon ${spread(idle.daemonTickMsPerMin, 1)}. ` +
      `Wake-ups (context switches, all threads) per minute: daemon ${spread(idle.daemonWakeupsPerMin)}, bare ${spread(idle.bareWakeupsPerMin)}.`,
  );
}

function driftRows(drift: DriftResult, rows: Row[], notes: string[]): void {
  const delta = (drift.endRssKiB - drift.warmRssKiB) / 1024;
  rows.push({
    benchmark: `RSS drift over ${drift.cycles} refresh cycles (stand-in, ${drift.leaseSeconds} s leases, node ${IMAGE_NODE_ARGS.join(' ')} as in the image)`,
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
      `. Warm = median RSS while cycles 500-599 ran; end = median over the last 200 cycles. Node flags: ${IMAGE_NODE_ARGS.join(' ')} (the image's ENTRYPOINT).`,
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
    { s: { ...DEFAULT_FLEET, name: 'first acquisition delayed U(0, 30 s)', firstDelaySeconds: 30 } },
    { s: { ...DEFAULT_FLEET, name: 'REFRESH_JITTER 0.5', refreshJitter: 0.5 } },
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
    benchmark: `Fleet of ${d.scenario.sidecars} (real LeaseLoop, virtual ${d.scenario.durationSeconds / 3600} h): peak/mean STS calls, 1 s buckets, excl. start-up second`,
    measured: `peak ${d.peakAfterStartup1s}/s`,
    baseline: `mean ${d.meanPerSecond.toFixed(2)}/s`,
    ratio: `${d.afterStartup1s.toFixed(1)} (incl. start-up second ${d.withStartup1s.toFixed(0)})`,
    goal: '<= 3',
    met: d.afterStartup1s <= 3,
  });
  const head =
    '| Scenario | incl. start-up s (1 s) | excl. start-up s (1 s) | after 1st refresh wave (1 s) | 10 s buckets | 60 s buckets | uniform-random floor (1 s / 60 s) | STS calls per sidecar-hour | lease expiries |\n|---|---|---|---|---|---|---|---|---|';
  const body = results.map(
    (r) =>
      `| ${r.scenario.name} | ${r.withStartup1s.toFixed(1)} | ${r.afterStartup1s.toFixed(1)} | ${r.afterFirstWave1s.toFixed(1)} | ${r.afterStartup10s.toFixed(1)} | ${r.afterStartup60s.toFixed(1)} | ${r.uniformReference1s.toFixed(1)} / ${r.uniformReference60s.toFixed(2)} | ${r.callsPerSidecarHour.toFixed(2)} | ${r.expiries} |`,
  );
  notes.push(
    `Fleet: ${d.scenario.sidecars} sidecars started within 1 s, TTL ${d.scenario.ttlSeconds} s, fraction ${d.scenario.refreshFraction}, jitter ${d.scenario.refreshJitter}, ` +
      `margin ${d.scenario.readyMarginSeconds} s, backoff ${d.scenario.backoffInitialSeconds}-${d.scenario.backoffMaxSeconds} s, STS fails ${d.scenario.stsFailureRate * 100} % at random ` +
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
  const [a, b] = [...r.samples.values()];
  const names = [...r.samples.keys()];
  if (a && b) {
    notes.push(
      `STS latency: ${STS_LATENCY_CALLS} calls per backend after ${r.warmup} warm-up calls each, interleaved; ${names[1]}/${names[0]} median ratio ${(median(b) / median(a)).toFixed(2)}.`,
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
  const rows: Row[] = [];
  const notes: string[] = [];
  // Leave the machine as found: stop the Ceph stack afterwards only if this run started it.
  const rgwWasUp = await isRgwUp();
  if (ONLY !== 'fleet' && ONLY !== 'endpoint' && ONLY !== 'sts-latency') {
    const rgw = await coldAndIdle(rows, notes).catch(async (err: unknown) => {
      if (!rgwWasUp) await stopRgw();
      throw err;
    });
    try {
      log('starting the local stack with the STS stand-in');
      const standInStack = await startLocalStack({ sts: 'stand-in', minDurationSeconds: 1 });
      let drift: DriftResult;
      try {
        log(
          `drift: ${P.driftCycles} refresh cycles with ${DRIFT_LEASE_SECONDS} s leases (idle daemons keep idling meanwhile)`,
        );
        drift = await measureDrift(standInStack, P.driftCycles, DRIFT_LEASE_SECONDS, IMAGE_NODE_ARGS);
      } finally {
        await standInStack.close();
      }
      log('waiting for the end of the idle CPU window');
      const idle = await rgw.idle();
      idleRows(idle, rows, notes);
      driftRows(drift, rows, notes);
    } finally {
      await rgw.close();
      if (!rgwWasUp && !process.env.STSTEST_KEEP_RGW) await stopRgw();
    }
  }
  if (ONLY === undefined || ONLY === 'endpoint')
    await endpointRows(rows, notes, { quick: QUICK, log, nodeArgs: IMAGE_NODE_ARGS });
  const fleetTable = ONLY === 'endpoint' || ONLY === 'sts-latency' ? '' : await fleetRows(rows, notes);
  if (ONLY === undefined || ONLY === 'sts-latency') {
    try {
      await stsLatencyRows(rows, notes);
    } finally {
      if (!rgwWasUp && !process.env.STSTEST_KEEP_RGW) await stopRgw();
    }
  }

  const command = `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`;
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const machine =
    `Machine: ${os.availableParallelism()} CPUs (nproc; ${cpu}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB memory, ` +
    `${os.type()} ${os.release()}; Node ${process.version}; ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; ` +
    `command \`${command}\` (${((Date.now() - started) / 1000).toFixed(0)} s)${QUICK ? ' (QUICK: too few runs to quote)' : ''}.`;
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
