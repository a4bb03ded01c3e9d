import { formatExpiration } from './domain/credentials.ts';
import {
  firstLeaseSchedule,
  nextRefreshAt,
  cappedLeaseRefreshAt,
  retryDelayMs,
  type LeaseWindow,
  type SchedulePolicy,
} from './domain/schedule.ts';
import type { LeaseReporter } from './lease-events.ts';
import { acquiredEvent, failureEvent, isDenial } from './lease-outcome.ts';
import type { Clock, CredentialSink } from './ports.ts';
import {
  cappedByTokenExp,
  VendingPipeline,
  type Exchange,
  type VendingPorts,
  type VendingRequest,
} from './vending-pipeline.ts';

/** What one workload asks for, and how the loop behaves. */
export interface LeaseSettings extends VendingRequest {
  readonly schedule: SchedulePolicy;
  /** Upper bound of one whole attempt (token, decision, exchange, write), for liveness. */
  readonly attemptDeadlineMs: number;
}

export interface LeaseLoopDeps extends VendingPorts {
  readonly sink: CredentialSink;
  readonly clock: Clock;
  /** Uniform in [0, 1). */
  readonly random: () => number;
  readonly report: LeaseReporter;
}

interface OnDisk extends LeaseWindow {
  readonly accessKeyId: string | undefined;
}

/**
 * The lifecycle of one lease: schedules vending attempts (see VendingPipeline), owns the set on the sink
 * (writes, removal at expiry or on a deny, wipe on exit) and reports each outcome. Talks only to ports.
 */
export class LeaseLoop {
  readonly #s: LeaseSettings;
  readonly #d: LeaseLoopDeps;
  readonly #vend: VendingPipeline;
  #onDisk: OnDisk | undefined;
  #wroteThisRun = false;
  #awaitingNewToken = false;
  #failures = 0;
  #wake: AbortController | undefined;
  #wakeRequested = false;
  #sinkQueue: Promise<unknown> = Promise.resolve();

  constructor(settings: LeaseSettings, deps: LeaseLoopDeps) {
    this.#s = settings;
    this.#d = deps;
    this.#vend = new VendingPipeline(settings, deps);
  }

  /** Number of consecutive failed attempts. */
  get failures(): number {
    return this.#failures;
  }

  /**
   * True while the lease on disk was capped at the token's exp: only a new token gets a longer lease, so a
   * token rotation should wake the loop (see refreshNow).
   */
  get awaitingNewToken(): boolean {
    return this.#awaitingNewToken;
  }

  /** Wake the loop and refresh now (SIGHUP, or a token rotation after a failure or a capped lease). */
  refreshNow(): void {
    this.#wakeRequested = true;
    this.#wake?.abort();
  }

  /**
   * One attempt for a one-shot command: `once` (write: the set goes to the sink) or `credential-process`
   * (nothing written). Its outcome is reported exactly once, lease.acquired, lease.denied or lease.failed,
   * like the daemon's (without a next refresh or attempt), then it returns or rethrows. `once` fails closed
   * like the daemon: a deny removes the set an earlier run left in the sink (lease.revoked) before it
   * rethrows; a failure keeps it.
   */
  async attemptOnce(signal: AbortSignal | undefined, opts: { write: boolean }): Promise<Exchange> {
    try {
      if (opts.write) {
        this.#track(await this.#d.sink.prepare(signal));
        return (await this.#acquire(signal, { oneShot: true })).exchange;
      }
      const exchange = await this.#vend.attempt(signal);
      this.#reportAcquired(exchange, false, undefined);
      return exchange;
    } catch (err) {
      const denied = isDenial(err);
      if (denied && opts.write) {
        // The deny is still the outcome (exit 4); a removal that failed says so in its own lease.failed.
        await this.#revoke('denied', signal).catch((removeErr: unknown) =>
          this.#reportFailure(removeErr, false, undefined),
        );
      }
      this.#reportFailure(err, denied, undefined);
      throw err;
    }
  }

  /** Runs until `signal` aborts. Never throws for an attempt's failure; reports it and retries. */
  async run(signal: AbortSignal): Promise<void> {
    const onAbort = () => this.#wake?.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      // A directory problem here shows again, reported and retried, at the first attempt's write.
      this.#track(await this.#d.sink.prepare(signal).catch(() => undefined));
      let nextAt = this.#d.clock.now();
      while (!signal.aborted) {
        await this.#sleepUntil(nextAt, signal);
        if (signal.aborted) break;
        nextAt = await this.#attempt(signal);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * A set left by an earlier run: keep serving it (the app must not lose access across a restart) but
   * refresh at once, and still remove it when it expires or on a deny.
   */
  #track(existing: Awaited<ReturnType<CredentialSink['prepare']>>): void {
    if (!existing) return;
    this.#onDisk = {
      issuedAtMs: this.#d.clock.now(),
      expiresAtMs: existing.expiresAtMs,
      accessKeyId: existing.set?.accessKeyId,
    };
  }

  /** Removes the set (wipe on exit); `signal` bounds it (a remote sink must not hold the shutdown). */
  async wipe(signal?: AbortSignal): Promise<void> {
    await this.#revoke('wipe_on_exit', signal);
  }

  /**
   * One exchange, written to the sink, reported. Returns when the next refresh is due; a one-shot command
   * (`once`) has no next refresh, so its event carries none.
   */
  async #acquire(
    signal?: AbortSignal,
    opts: { oneShot?: boolean } = {},
  ): Promise<{ exchange: Exchange; nextRefreshAtMs: number }> {
    const exchange = await this.#vend.attempt(signal);
    const window = { issuedAtMs: exchange.startedAtMs, expiresAtMs: exchange.credentials.expiresAtMs };
    // The first lease of a run spreads its refresh over most of the refresh window (see firstLeaseSchedule).
    const schedule = this.#wroteThisRun ? this.#s.schedule : firstLeaseSchedule(this.#s.schedule);
    const capped = cappedByTokenExp(exchange);
    const normalAt = nextRefreshAt(window, schedule, this.#d.random());
    const nextRefreshAtMs = capped
      ? cappedLeaseRefreshAt(window, schedule, normalAt, exchange.token)
      : normalAt;
    let renewed = false;
    // Serialised with the expiry removal, which may fire while this attempt is in flight.
    await this.#serial(async () => {
      try {
        await this.#d.sink.write(exchange.credentials, signal);
      } catch (err) {
        // The new set went live before the failure (see CredentialSink.write): track it, so that it is
        // still removed at its expiry.
        if ((err as { committed?: boolean }).committed === true) {
          this.#onDisk = { ...window, accessKeyId: exchange.credentials.accessKeyId };
        }
        throw err;
      }
      renewed = this.#wroteThisRun && this.#onDisk !== undefined;
      this.#onDisk = { ...window, accessKeyId: exchange.credentials.accessKeyId };
      this.#wroteThisRun = true;
      this.#awaitingNewToken = capped;
    });
    this.#reportAcquired(exchange, renewed, opts.oneShot === true ? undefined : nextRefreshAtMs);
    return { exchange, nextRefreshAtMs };
  }

  /** One scheduled attempt; returns when the next one is due. */
  async #attempt(signal: AbortSignal): Promise<number> {
    const { clock } = this.#d;
    const start = clock.now();
    this.#d.report({ event: 'loop.attempt', at_ms: start, deadline_ms: start + this.#s.attemptDeadlineMs });
    // A slow attempt must not keep an expired set on disk past its expiry.
    const watch = this.#watchExpiry();
    try {
      const { nextRefreshAtMs } = await this.#acquire(signal);
      this.#failures = 0;
      return nextRefreshAtMs;
    } catch (err) {
      await watch.stop();
      if (signal.aborted) return clock.now();
      this.#failures++;
      const now = clock.now();
      const denied = isDenial(err);
      if (denied) {
        // A set that cannot be removed must not stop the loop: it says so and tries again next cycle.
        await this.#revoke('denied', signal).catch((removeErr: unknown) =>
          this.#reportFailure(removeErr, false, now + this.#s.schedule.backoffInitialMs),
        );
      }
      const delay = retryDelayMs(this.#failures, this.#s.schedule, this.#d.random(), now, this.#onDisk);
      const next = now + delay;
      this.#reportFailure(err, denied, next);
      return next;
    } finally {
      await watch.stop();
    }
  }

  /** Sink operations never interleave: an expiry removal must not race a write. */
  #serial<T>(op: () => Promise<T>): Promise<T> {
    const result = this.#sinkQueue.then(op, op);
    this.#sinkQueue = result.catch(() => undefined);
    return result;
  }

  /** While an attempt is in flight, removes the set at its expiry all the same. */
  #watchExpiry(): { stop(): Promise<void> } {
    const onDisk = this.#onDisk;
    if (!onDisk) return { stop: async () => undefined };
    const stop = new AbortController();
    const done = (async () => {
      await this.#d.clock.sleep(onDisk.expiresAtMs - this.#d.clock.now(), stop.signal);
      if (!stop.signal.aborted) await this.#expireIfDue();
    })().catch(() => undefined);
    return {
      async stop() {
        stop.abort();
        await done;
      },
    };
  }

  /**
   * Removes the set if it has expired; serialised with writes. Returns false when the removal failed
   * (reported); the set stays tracked and the removal is tried again.
   */
  async #expireIfDue(): Promise<boolean> {
    return this.#serial(async () => {
      const onDisk = this.#onDisk;
      if (!onDisk || this.#d.clock.now() < onDisk.expiresAtMs) return true;
      try {
        await this.#d.sink.remove();
      } catch (err) {
        this.#reportFailure(err, false, this.#d.clock.now() + this.#s.schedule.backoffInitialMs);
        return false;
      }
      this.#onDisk = undefined;
      this.#d.report({
        event: 'lease.expired',
        tenant: this.#s.tenant,
        expiration: formatExpiration(onDisk.expiresAtMs),
        access_key_id: onDisk.accessKeyId,
      });
      return true;
    });
  }

  async #revoke(reason: 'denied' | 'wipe_on_exit', signal?: AbortSignal): Promise<void> {
    const had = this.#onDisk;
    await this.#serial(() => this.#d.sink.remove(signal));
    // Forgotten only once it is really gone: a failed removal is retried (next deny, or its expiry).
    this.#onDisk = undefined;
    if (had)
      this.#d.report({
        event: 'lease.revoked',
        tenant: this.#s.tenant,
        reason,
        access_key_id: had.accessKeyId,
      });
  }

  #reportAcquired(exchange: Exchange, renewed: boolean, nextRefreshAtMs: number | undefined): void {
    this.#d.report(
      acquiredEvent(this.#vend.audit(exchange.token), exchange, {
        renewed,
        requestedTtlSeconds: this.#s.ttlSeconds,
        nextRefreshAtMs,
      }),
    );
  }

  #reportFailure(err: unknown, denied: boolean, nextAtMs: number | undefined): void {
    this.#d.report(
      failureEvent(this.#vend.audit(), err, { denied, keptUntilMs: this.#onDisk?.expiresAtMs, nextAtMs }),
    );
  }

  async #sleepUntil(nextAt: number, signal: AbortSignal): Promise<void> {
    const { clock } = this.#d;
    for (;;) {
      if (signal.aborted) return;
      const now = clock.now();
      const onDisk = this.#onDisk;
      let removalFailed = false;
      if (onDisk && now >= onDisk.expiresAtMs) {
        if (await this.#expireIfDue()) continue;
        removalFailed = true;
      }
      if (now >= nextAt || this.#wakeRequested) {
        this.#wakeRequested = false;
        return;
      }
      // After a failed removal, try again after the initial backoff rather than spinning on it.
      const removalAt = removalFailed ? now + this.#s.schedule.backoffInitialMs : onDisk?.expiresAtMs;
      const until = removalAt === undefined ? nextAt : Math.min(nextAt, removalAt);
      this.#d.report({ event: 'loop.sleep', at_ms: now, until_ms: until });
      this.#wake = new AbortController();
      await clock.sleep(until - now, this.#wake.signal);
      this.#wake = undefined;
    }
  }
}
