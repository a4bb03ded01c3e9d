/**
 * Benchmark 6: a fleet of sidecars, each the REAL LeaseLoop from src/lease-loop.ts, on a virtual clock
 * with in-memory simulation fakes for the token, the IdP's identity exchange, flex-auth, the STS and the
 * credential directory. Virtual time jumps from event to event, so hours of fleet behaviour take seconds.
 * Counts STS and IdP calls (failed ones too: they load the server just the same) in 1 s buckets of
 * virtual time.
 *
 * The IdP step models the identity exchange of issue 9 (the pod's token traded at the IdP before
 * flex-auth) as a fake in front of the token source: every attempt calls it first, and it fails at its
 * own rate and in its own outages, so the fleet's load on the IdP is measured like its load on the STS.
 */
import { LeaseLoop, type LeaseSettings } from '../src/lease-loop.ts';
import { SidecarError, StsError } from '../src/errors.ts';
import type {
  AssumeRequest,
  AssumeResult,
  Clock,
  CredentialSink,
  PolicyClient,
  Token,
  TokenSource,
} from '../src/ports.ts';
import type { AllowAnswer } from '../src/domain/grant.ts';
import { leaseStartDelayMs } from '../src/domain/lease-start.ts';
import { schedulePolicy } from '../src/domain/schedule.ts';
import { median } from './stats.ts';

/** Deterministic uniform [0, 1) generator (mulberry32), so every run of the benchmark is reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Timer {
  readonly at: number;
  readonly seq: number;
  resolve: (() => void) | undefined;
}

/** A binary min-heap of timers ordered by (at, seq). */
class TimerHeap {
  readonly #h: Timer[] = [];
  get size(): number {
    return this.#h.length;
  }
  peek(): Timer | undefined {
    return this.#h[0];
  }
  push(t: Timer): void {
    const h = this.#h;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!TimerHeap.#less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  pop(): Timer | undefined {
    const h = this.#h;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && TimerHeap.#less(h[l]!, h[m]!)) m = l;
        if (r < h.length && TimerHeap.#less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
  static #less(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }
}

/**
 * Simulation clock: `sleep` registers a timer in virtual time; `runUntil` advances virtual time from one
 * timer to the next, letting all promise continuations settle (a macrotask turn) after each instant.
 */
export class VirtualClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new TimerHeap();

  constructor(startMs: number) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  sleep(ms: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer: Timer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, resolve: undefined };
      const onAbort = () => {
        timer.resolve = undefined;
        resolve();
      };
      timer.resolve = () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#timers.push(timer);
    });
  }

  /** Lets every pending continuation run: promise chains of the fakes settle within one macrotask turn. */
  static settle(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
  }

  async runUntil(endMs: number): Promise<void> {
    await VirtualClock.settle();
    for (;;) {
      const next = this.#timers.peek();
      if (!next || next.at > endMs) break;
      this.#now = next.at;
      while (this.#timers.peek()?.at === this.#now) this.#timers.pop()!.resolve?.();
      await VirtualClock.settle();
    }
    this.#now = endMs;
  }
}

const NEVER = new AbortController().signal;

export interface FleetScenario {
  readonly name: string;
  readonly sidecars: number;
  /**
   * Named leases per sidecar (issue 19), default 1: each its own real LeaseLoop and random draws, sharing the
   * pod's token source (and its IdP step); lease i starts after leaseStartDelayMs(i), as the daemon does.
   */
  readonly leasesPerSidecar?: number;
  readonly durationSeconds: number;
  readonly ttlSeconds: number;
  readonly refreshFraction: number;
  readonly refreshJitter: number;
  readonly readyMarginSeconds: number;
  readonly backoffInitialSeconds: number;
  readonly backoffMaxSeconds: number;
  /** Every sidecar starts at a uniform random instant in [0, startSpreadSeconds). */
  readonly startSpreadSeconds: number;
  /** Extra random delay before the first acquisition, uniform in [0, firstDelaySeconds): the "jitter the first acquisition" lever. */
  readonly firstDelaySeconds: number;
  readonly stsFailureRate: number;
  /** A total outage [start, start + length) in seconds of virtual time, of the STS (default) or the IdP. */
  readonly outage: { startSeconds: number; lengthSeconds: number; target?: 'sts' | 'idp' } | undefined;
  /** Virtual latency of one STS call, uniform in [min, max] ms. */
  readonly stsLatencyMs: readonly [number, number];
  /** The identity exchange before flex-auth; undefined = no IdP step. */
  readonly idp: { failureRate: number; latencyMs: readonly [number, number] } | undefined;
}

export const DEFAULT_FLEET: FleetScenario = {
  name: 'defaults',
  sidecars: 1000,
  durationSeconds: 5 * 3600,
  ttlSeconds: 3600,
  refreshFraction: 0.5,
  refreshJitter: 0.1,
  readyMarginSeconds: 360,
  backoffInitialSeconds: 1,
  backoffMaxSeconds: 60,
  startSpreadSeconds: 1,
  firstDelaySeconds: 0,
  stsFailureRate: 0.05,
  // In the middle of the second refresh wave (about 2 x 0.45 x 3600 s after the start): the worst place.
  outage: { startSeconds: 3180, lengthSeconds: 120 },
  stsLatencyMs: [20, 80],
  idp: { failureRate: 0.05, latencyMs: [10, 40] },
};

export interface FleetRun {
  /** STS calls per 1 s bucket of virtual time. */
  readonly buckets: number[];
  /** IdP calls per 1 s bucket of virtual time (all zero without an IdP step). */
  readonly idpBuckets: number[];
  readonly calls: number;
  readonly failedCalls: number;
  readonly expiries: number;
  readonly maxUnreadySeconds: number;
}

/** Counts calls in 1 s buckets; fails at random and while its outage lasts. */
class SimulationServer {
  readonly buckets: number[];
  calls = 0;
  failed = 0;
  readonly #clock: VirtualClock;
  readonly #s: FleetScenario;
  readonly #random: () => number;
  readonly #target: 'sts' | 'idp';
  readonly #failureRate: number;
  readonly #latencyMs: readonly [number, number];

  constructor(
    clock: VirtualClock,
    scenario: FleetScenario,
    random: () => number,
    target: 'sts' | 'idp',
    failureRate: number,
    latencyMs: readonly [number, number],
  ) {
    this.#clock = clock;
    this.#s = scenario;
    this.#random = random;
    this.#target = target;
    this.#failureRate = failureRate;
    this.#latencyMs = latencyMs;
    this.buckets = new Array<number>(scenario.durationSeconds + 1).fill(0);
  }

  /** One call: resolves with whether it failed (outage or random failure), after its latency. */
  async call(): Promise<{ failed: boolean; inOutage: boolean }> {
    const t = this.#clock.now();
    const bucket = Math.floor(t / 1000);
    if (bucket < this.buckets.length) this.buckets[bucket]!++;
    this.calls++;
    const [lo, hi] = this.#latencyMs;
    await this.#clock.sleep(lo + (hi - lo) * this.#random(), NEVER);
    const o = this.#s.outage;
    const inOutage =
      o !== undefined &&
      (o.target ?? 'sts') === this.#target &&
      t >= o.startSeconds * 1000 &&
      t < (o.startSeconds + o.lengthSeconds) * 1000;
    const failed = inOutage || this.#random() < this.#failureRate;
    if (failed) this.failed++;
    return { failed, inOutage };
  }
}

/**
 * Simulation fakes: a token that never expires (traded at the simulated IdP first when the scenario has
 * an IdP step), a policy that always allows, an in-memory sink.
 */
class SimulationTokenSource implements TokenSource {
  readonly #token: Token;
  readonly #idp: SimulationServer | undefined;
  constructor(i: number, idp: SimulationServer | undefined) {
    this.#idp = idp;
    this.#token = {
      raw: `simulated-token-${i}`,
      issuer: 'https://issuer.simulation',
      subject: `system:serviceaccount:sim:pod-${i}`,
      audience: ['sts.simulation'],
      tenant: undefined,
      issuedAtMs: 0,
      expiresAtMs: Number.MAX_SAFE_INTEGER,
    };
  }
  async read(): Promise<Token> {
    if (this.#idp) {
      const r = await this.#idp.call();
      // Stands for the identity exchange's own retryable "IdP unavailable" failure (issue 9).
      if (r.failed)
        throw new SidecarError(
          'ERR_TOKEN_UNREADABLE',
          r.inOutage ? 'simulated IdP outage' : 'simulated IdP failure',
          { retryable: true },
        );
    }
    return this.#token;
  }
}

class SimulationPolicy implements PolicyClient {
  async decide(): Promise<AllowAnswer> {
    return { decisionId: 'sim', ttlSeconds: undefined, actions: undefined, obligations: undefined };
  }
}

class SimulationSink implements CredentialSink {
  expiresAtMs: number | undefined;
  async prepare(): Promise<undefined> {
    return undefined;
  }
  async write(set: { expiresAtMs: number }): Promise<void> {
    this.expiresAtMs = set.expiresAtMs;
  }
  async remove(): Promise<void> {
    this.expiresAtMs = undefined;
  }
}

/** The simulated STS: every call is counted in its 1 s bucket; fails at random and during the outage. */
class SimulationSts {
  readonly server: SimulationServer;
  readonly #clock: VirtualClock;

  constructor(clock: VirtualClock, scenario: FleetScenario, random: () => number) {
    this.#clock = clock;
    this.server = new SimulationServer(
      clock,
      scenario,
      random,
      'sts',
      scenario.stsFailureRate,
      scenario.stsLatencyMs,
    );
  }

  async assume(request: AssumeRequest): Promise<AssumeResult> {
    const r = await this.server.call();
    if (r.failed) {
      throw new StsError('ERR_STS_UNREACHABLE', r.inOutage ? 'simulated outage' : 'simulated failure', {
        httpStatus: 503,
      });
    }
    const now = this.#clock.now();
    return {
      credentials: {
        accessKeyId: 'ASIASIMULATION',
        secretAccessKey: 'simulated',
        sessionToken: 'simulated',
        expiresAtMs: now + request.durationSeconds * 1000,
      },
      requestId: undefined,
      assumedRoleArn: undefined,
    };
  }
}

/** The loop class to simulate: the real LeaseLoop unless a candidate patch is being measured. */
export type LeaseLoopClass = typeof LeaseLoop;

export async function simulateFleet(
  scenario: FleetScenario,
  seed: number,
  Loop: LeaseLoopClass = LeaseLoop,
): Promise<FleetRun> {
  const clock = new VirtualClock(0);
  const rnd = seededRandom(seed);
  const sts = new SimulationSts(clock, scenario, seededRandom(seed ^ 0x5eed));
  const idp = scenario.idp
    ? new SimulationServer(
        clock,
        scenario,
        seededRandom(seed ^ 0x1d9),
        'idp',
        scenario.idp.failureRate,
        scenario.idp.latencyMs,
      )
    : undefined;
  const stop = new AbortController();
  const settings: LeaseSettings = {
    tenant: 'sim',
    bucket: 'sim-bucket',
    prefix: '',
    actions: ['read'],
    ttlSeconds: scenario.ttlSeconds,
    roleArn: 'arn:aws:iam::000000000000:role/sim',
    sessionName: undefined,
    backend: 'generic',
    durationLimits: { minSeconds: 900, maxSeconds: 43200 },
    schedule: schedulePolicy(scenario),
    attemptDeadlineMs: 30_000,
  };
  let expiries = 0;
  const sinks: SimulationSink[] = [];
  const runs: Promise<void>[] = [];
  // Readiness: seconds a sidecar holds no set with more than the margin left, after its first set.
  const unreadySince = new Map<number, number>();
  let maxUnreadyMs = 0;
  const leasesPerSidecar = scenario.leasesPerSidecar ?? 1;
  for (let i = 0; i < scenario.sidecars; i++) {
    const tokens = new SimulationTokenSource(i, idp);
    const startAt = rnd() * scenario.startSpreadSeconds * 1000 + rnd() * scenario.firstDelaySeconds * 1000;
    for (let j = 0; j < leasesPerSidecar; j++) {
      const sink = new SimulationSink();
      sinks.push(sink);
      // Lease 0 keeps the single-lease seeds, so the one-lease scenarios' figures do not move.
      const random = seededRandom(seed * 7919 + i + j * 1_000_003);
      const loop = new Loop(settings, {
        tokens,
        policy: new SimulationPolicy(),
        issuer: sts,
        sink,
        clock,
        random,
        report: (e) => {
          if (e.event === 'lease.expired') expiries++;
        },
      });
      const delay = j === 0 ? 0 : leaseStartDelayMs(j, random());
      runs.push(clock.sleep(startAt + delay, NEVER).then(() => loop.run(stop.signal)));
    }
  }
  // Sample readiness every virtual 10 s (cheap, and fine enough for a minutes-long outage).
  const endMs = scenario.durationSeconds * 1000;
  for (let t = 0; t < endMs; t += 10_000) {
    await clock.runUntil(t);
    sinks.forEach((s, i) => {
      const ready = s.expiresAtMs !== undefined && s.expiresAtMs - t > scenario.readyMarginSeconds * 1000;
      if (ready) unreadySince.delete(i);
      else if (s.expiresAtMs !== undefined || unreadySince.has(i)) {
        const since = unreadySince.get(i) ?? t;
        unreadySince.set(i, since);
        maxUnreadyMs = Math.max(maxUnreadyMs, t - since);
      }
    });
  }
  await clock.runUntil(endMs);
  stop.abort();
  await VirtualClock.settle();
  await Promise.race([Promise.all(runs), VirtualClock.settle()]);
  return {
    buckets: sts.server.buckets.slice(0, scenario.durationSeconds),
    idpBuckets: (idp?.buckets ?? []).slice(0, scenario.durationSeconds),
    calls: sts.server.calls,
    failedCalls: sts.server.failed,
    expiries,
    maxUnreadySeconds: maxUnreadyMs / 1000,
  };
}

export interface PeakOverMean {
  readonly peak: number;
  readonly mean: number;
  readonly ratio: number;
}

/** Peak bucket over mean rate, with buckets of `width` seconds, over buckets [from, end). */
export function peakOverMean(buckets: readonly number[], width: number, from = 0): PeakOverMean {
  const slice = buckets.slice(from);
  const grouped: number[] = [];
  for (let i = 0; i + width <= slice.length; i += width)
    grouped.push(slice.slice(i, i + width).reduce((a, b) => a + b, 0));
  const total = grouped.reduce((a, b) => a + b, 0);
  const mean = total / grouped.length;
  const peak = Math.max(...grouped);
  return { peak, mean, ratio: peak / mean };
}

/** The floor set by chance alone: the same number of calls thrown uniformly at random over the window. */
export function uniformReference(calls: number, seconds: number, width: number, seed: number): number {
  const rnd = seededRandom(seed);
  const buckets = new Array<number>(seconds).fill(0);
  for (let i = 0; i < calls; i++) buckets[Math.floor(rnd() * seconds)]!++;
  return peakOverMean(buckets, width).ratio;
}

export interface FleetSummary {
  readonly scenario: FleetScenario;
  readonly seeds: number;
  /** Medians over the seeds. */
  readonly withStartup1s: number;
  readonly afterStartup1s: number;
  readonly afterStartup10s: number;
  readonly afterStartup60s: number;
  readonly afterFirstWave1s: number;
  readonly uniformReference1s: number;
  readonly uniformReference60s: number;
  /** 60 s peak/mean over the chance floor of the same calls (median of the per-seed quotients). */
  readonly overFloor60s: number;
  /** The same from the end of the start-up minute (the fleet's cold start and its quick retries excluded). */
  readonly afterStartupMinute60s: number;
  readonly uniformReferenceMinute60s: number;
  readonly overFloorAfterStartupMinute60s: number;
  /** The same figures for the IdP's calls, from the end of the start-up minute (0 without an IdP step). */
  readonly idpAfterStartup60s: number;
  readonly idpUniformReference60s: number;
  readonly idpOverFloor60s: number;
  readonly idpCallsPerSidecarHour: number;
  readonly peakAfterStartup1s: number;
  /** Second of the highest 1 s bucket after start-up, per seed. */
  readonly peakAtSeconds: number[];
  readonly meanPerSecond: number;
  readonly callsPerSidecarHour: number;
  readonly failedCalls: number;
  readonly expiries: number;
  readonly maxUnreadySeconds: number;
  readonly wallMs: number;
}

export async function runFleetScenario(
  scenario: FleetScenario,
  seeds: number,
  Loop: LeaseLoopClass = LeaseLoop,
): Promise<FleetSummary> {
  const start = Date.now();
  const r = {
    withStartup1s: [] as number[],
    afterStartup1s: [] as number[],
    afterStartup10s: [] as number[],
    afterStartup60s: [] as number[],
    afterFirstWave1s: [] as number[],
    ref1: [] as number[],
    ref60: [] as number[],
    over60: [] as number[],
    m60: [] as number[],
    mRef60: [] as number[],
    mOver60: [] as number[],
    idp60: [] as number[],
    idpRef60: [] as number[],
    idpOver60: [] as number[],
    idpCalls: [] as number[],
    peak: [] as number[],
    mean: [] as number[],
    calls: [] as number[],
    failed: [] as number[],
    expiries: [] as number[],
    unready: [] as number[],
    peakAt: [] as number[],
  };
  // The first wave of refreshes is over once every sidecar has refreshed once: after the first lease's refresh window.
  const firstWaveEnd = Math.ceil(
    scenario.ttlSeconds * scenario.refreshFraction + scenario.startSpreadSeconds + scenario.firstDelaySeconds,
  );
  for (let s = 1; s <= seeds; s++) {
    const run = await simulateFleet(scenario, s, Loop);
    r.peakAt.push(run.buckets.indexOf(Math.max(...run.buckets.slice(1)), 1));
    const after = peakOverMean(run.buckets, 1, 1);
    r.withStartup1s.push(peakOverMean(run.buckets, 1, 0).ratio);
    r.afterStartup1s.push(after.ratio);
    r.afterStartup10s.push(peakOverMean(run.buckets, 10, 1).ratio);
    r.afterStartup60s.push(peakOverMean(run.buckets, 60, 1).ratio);
    r.afterFirstWave1s.push(peakOverMean(run.buckets, 1, firstWaveEnd).ratio);
    const afterCalls = run.buckets.slice(1).reduce((a, b) => a + b, 0);
    r.ref1.push(uniformReference(afterCalls, run.buckets.length - 1, 1, 1000 + s));
    r.ref60.push(uniformReference(afterCalls, run.buckets.length - 1, 60, 1000 + s));
    r.over60.push(r.afterStartup60s.at(-1)! / r.ref60.at(-1)!);
    const afterMinuteCalls = run.buckets.slice(60).reduce((a, b) => a + b, 0);
    r.m60.push(peakOverMean(run.buckets, 60, 60).ratio);
    r.mRef60.push(uniformReference(afterMinuteCalls, run.buckets.length - 60, 60, 3000 + s));
    r.mOver60.push(r.m60.at(-1)! / r.mRef60.at(-1)!);
    const idpCalls = run.idpBuckets.reduce((a, b) => a + b, 0);
    r.idpCalls.push(idpCalls);
    if (idpCalls > 0) {
      const idpAfter = run.idpBuckets.slice(60).reduce((a, b) => a + b, 0);
      r.idp60.push(peakOverMean(run.idpBuckets, 60, 60).ratio);
      r.idpRef60.push(uniformReference(idpAfter, run.idpBuckets.length - 60, 60, 2000 + s));
      r.idpOver60.push(r.idp60.at(-1)! / r.idpRef60.at(-1)!);
    }
    r.peak.push(after.peak);
    r.mean.push(after.mean);
    r.calls.push(run.calls);
    r.failed.push(run.failedCalls);
    r.expiries.push(run.expiries);
    r.unready.push(run.maxUnreadySeconds);
  }
  return {
    scenario,
    seeds,
    withStartup1s: median(r.withStartup1s),
    afterStartup1s: median(r.afterStartup1s),
    afterStartup10s: median(r.afterStartup10s),
    afterStartup60s: median(r.afterStartup60s),
    afterFirstWave1s: median(r.afterFirstWave1s),
    uniformReference1s: median(r.ref1),
    uniformReference60s: median(r.ref60),
    overFloor60s: median(r.over60),
    afterStartupMinute60s: median(r.m60),
    uniformReferenceMinute60s: median(r.mRef60),
    overFloorAfterStartupMinute60s: median(r.mOver60),
    idpAfterStartup60s: r.idp60.length ? median(r.idp60) : 0,
    idpUniformReference60s: r.idpRef60.length ? median(r.idpRef60) : 0,
    idpOverFloor60s: r.idpOver60.length ? median(r.idpOver60) : 0,
    idpCallsPerSidecarHour: median(r.idpCalls) / scenario.sidecars / (scenario.durationSeconds / 3600),
    peakAfterStartup1s: median(r.peak),
    peakAtSeconds: r.peakAt,
    meanPerSecond: median(r.mean),
    callsPerSidecarHour: median(r.calls) / scenario.sidecars / (scenario.durationSeconds / 3600),
    failedCalls: median(r.failed),
    expiries: median(r.expiries),
    maxUnreadySeconds: Math.max(...r.unready),
    wallMs: Date.now() - start,
  };
}
