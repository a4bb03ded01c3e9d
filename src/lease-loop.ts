import type { ActionGroup } from './config/schema.ts';
import { formatExpiration, type CredentialSet } from './domain/credentials.ts';
import { narrowGrant, type DurationLimits } from './domain/grant.ts';
import {
  firstLeaseSchedule,
  nextRefreshAt,
  cappedLeaseRefreshAt,
  retryDelayMs,
  type LeaseWindow,
  type SchedulePolicy,
} from './domain/schedule.ts';
import { buildSessionPolicy, sessionNameFromSubject } from './domain/session-policy.ts';
import {
  errorCode,
  isSidecarError,
  IdpError,
  PolicyDeniedError,
  SidecarError,
  StsError,
  type ErrorCode,
} from './errors.ts';
import type { LeaseAudit, LeaseReporter } from './lease-events.ts';
import type {
  AssumeResult,
  Clock,
  CredentialIssuer,
  CredentialSink,
  DecisionRequest,
  IdentityExchange,
  PolicyClient,
  Token,
  TokenSource,
} from './ports.ts';

/** What one workload asks for, and how the loop behaves. */
export interface LeaseSettings {
  readonly tenant: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly actions: readonly ActionGroup[];
  readonly ttlSeconds: number;
  readonly roleArn: string | undefined;
  readonly sessionName: string | undefined;
  readonly backend: string;
  readonly durationLimits: DurationLimits;
  readonly schedule: SchedulePolicy;
  /** Upper bound of one whole attempt (token, decision, exchange, write), for liveness. */
  readonly attemptDeadlineMs: number;
}

export interface LeaseLoopDeps {
  readonly tokens: TokenSource;
  readonly policy: PolicyClient;
  readonly issuer: CredentialIssuer;
  readonly sink: CredentialSink;
  readonly clock: Clock;
  /** Uniform in [0, 1). */
  readonly random: () => number;
  readonly report: LeaseReporter;
  /**
   * When set, the projected token is traded for an IAM Profile token at every attempt; only the
   * exchanged token reaches flex-auth and the STS, and it must carry the tenant claim.
   */
  readonly identity?: IdentityExchange | undefined;
}

/** A credential set with everything the audit trail needs. */
export interface Exchange {
  readonly credentials: CredentialSet;
  readonly token: Token;
  /** The projected service-account token's subject (the workload), for the audit trail. */
  readonly workloadSubject: string;
  readonly decisionId: string;
  readonly actions: readonly ActionGroup[];
  readonly ttlSeconds: number;
  readonly steppedDown: boolean;
  readonly sessionName: string;
  readonly stsRequestId: string | undefined;
  readonly startedAtMs: number;
}

/**
 * Errors that mean "you may not hold credentials now": the set on disk is removed at once. Everything
 * else (outages, malformed answers, STS trouble) keeps the last valid set until it expires.
 */
export const DENY_CODES: ReadonlySet<ErrorCode | 'ERR_UNEXPECTED'> = new Set<ErrorCode | 'ERR_UNEXPECTED'>([
  'ERR_POLICY_DENIED',
  'ERR_NOTHING_GRANTED',
  'ERR_TTL_BELOW_STS_MINIMUM',
  'ERR_POLICY_OBLIGATION_UNSUPPORTED',
  'ERR_TOKEN_TENANT_MISMATCH',
  'ERR_IDP_REFUSED',
  'ERR_TOKEN_TENANT_MISSING',
]);

export function isDenial(err: unknown): boolean {
  return DENY_CODES.has(errorCode(err));
}

interface OnDisk extends LeaseWindow {
  readonly accessKeyId: string | undefined;
}

/**
 * Keeps one credential set fresh: token -> decision -> exchange -> write, then sleeps until the
 * schedule says to refresh, removing the set when it expires or is denied. Talks only to ports.
 */
export class LeaseLoop {
  readonly #s: LeaseSettings;
  readonly #d: LeaseLoopDeps;
  #onDisk: OnDisk | undefined;
  #wroteThisRun = false;
  #awaitingNewToken = false;
  #attempt = 0;
  #failures = 0;
  #wake: AbortController | undefined;
  #wakeRequested = false;
  #lastToken: Token | undefined;
  #lastWorkloadSubject: string | undefined;
  #sinkQueue: Promise<unknown> = Promise.resolve();

  constructor(settings: LeaseSettings, deps: LeaseLoopDeps) {
    this.#s = settings;
    this.#d = deps;
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

  /** One full exchange without touching the sink (credential-process mode). */
  async exchange(signal?: AbortSignal): Promise<Exchange> {
    const { clock } = this.#d;
    const s = this.#s;
    const startedAtMs = clock.now();
    this.#attempt++;
    // Every attempt's audit starts empty: a failed token read must not name the previous attempt's identity.
    this.#lastWorkloadSubject = undefined;
    this.#lastToken = undefined;
    const workload = await this.#d.tokens.read(signal);
    this.#lastWorkloadSubject = workload.subject;
    const identity = this.#d.identity;
    // A failed exchange must not be audited under the previous attempt's IAM Profile identity.
    this.#lastToken = identity ? undefined : workload;
    const token = identity ? await this.#timed('idp', () => identity.exchange(workload, signal)) : workload;
    this.#lastToken = token;
    if (identity && token.tenant === undefined) {
      throw new SidecarError(
        'ERR_TOKEN_TENANT_MISSING',
        'the identity provider issued a token without a tenant claim; refusing to ask for credentials',
      );
    }
    if (token.tenant !== undefined && token.tenant !== s.tenant) {
      throw new SidecarError(
        'ERR_TOKEN_TENANT_MISMATCH',
        `token tenant claim does not match STS_SIDECAR_TENANT (${s.tenant}); refusing to ask for credentials`,
      );
    }
    const request: DecisionRequest = {
      protected_system: 'object-storage',
      tenant: s.tenant,
      resource: { bucket: s.bucket, prefix: s.prefix },
      actions: s.actions,
      // Never ask policy for more than the STS could issue; a longer configured TTL is logged as stepped down.
      ttl_seconds: Math.min(s.ttlSeconds, s.durationLimits.maxSeconds),
    };
    const answer = await this.#timed('flex_auth', () => this.#d.policy.decide(request, token.raw, signal));
    const grant = narrowGrant({ actions: s.actions, ttlSeconds: s.ttlSeconds }, answer, s.durationLimits);
    const sessionName = s.sessionName ?? sessionNameFromSubject(token.subject);
    const assume = (durationSeconds: number) =>
      this.#timed('sts', () =>
        this.#d.issuer.assume(
          {
            token: token.raw,
            roleArn: s.roleArn,
            sessionName,
            durationSeconds,
            policy: buildSessionPolicy({ bucket: s.bucket, prefix: s.prefix, actions: grant.actions }),
          },
          signal,
        ),
      );
    let ttlSeconds = grant.ttlSeconds;
    let steppedDown = grant.steppedDown;
    let result: AssumeResult;
    try {
      result = await assume(ttlSeconds);
    } catch (err) {
      // The role's real maximum may be below the configured one: asking for less is always allowed.
      if (errorCode(err) !== 'ERR_STS_DURATION_OUT_OF_RANGE' || ttlSeconds <= s.durationLimits.minSeconds)
        throw err;
      ttlSeconds = s.durationLimits.minSeconds;
      steppedDown = true;
      result = await assume(ttlSeconds);
    }
    const now = clock.now();
    if (result.credentials.expiresAtMs <= now) {
      throw new StsError('ERR_STS_INVALID_RESPONSE', 'STS returned credentials that are already expired', {
        requestId: result.requestId,
      });
    }
    return {
      credentials: result.credentials,
      token,
      workloadSubject: workload.subject,
      decisionId: answer.decisionId,
      actions: grant.actions,
      ttlSeconds,
      steppedDown,
      sessionName,
      stsRequestId: result.requestId,
      startedAtMs,
    };
  }

  /**
   * One exchange, written to the sink, reported. Returns when the next refresh is due; a one-shot command
   * (`once`) has no next refresh, so its event carries none.
   */
  async acquire(
    signal?: AbortSignal,
    opts: { oneShot?: boolean } = {},
  ): Promise<{ exchange: Exchange; nextRefreshAtMs: number }> {
    const exchange = await this.exchange(signal);
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

  #reportAcquired(exchange: Exchange, renewed: boolean, nextRefreshAtMs: number | undefined): void {
    this.#d.report({
      event: renewed ? 'lease.renewed' : 'lease.acquired',
      ...this.#audit(exchange.token),
      actions: exchange.actions,
      decision_id: exchange.decisionId,
      ttl_seconds: exchange.ttlSeconds,
      requested_ttl_seconds: this.#s.ttlSeconds,
      stepped_down: exchange.steppedDown,
      capped_by_token_exp: cappedByTokenExp(exchange),
      expiration: formatExpiration(exchange.credentials.expiresAtMs),
      expires_at_ms: exchange.credentials.expiresAtMs,
      access_key_id: exchange.credentials.accessKeyId,
      sts_request_id: exchange.stsRequestId,
      session_name: exchange.sessionName,
      next_refresh: nextRefreshAtMs === undefined ? undefined : new Date(nextRefreshAtMs).toISOString(),
    });
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
        return (await this.acquire(signal, { oneShot: true })).exchange;
      }
      const exchange = await this.exchange(signal);
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
        nextAt = await this.#attemptOnce(signal);
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

  async #attemptOnce(signal: AbortSignal): Promise<number> {
    const { clock } = this.#d;
    const start = clock.now();
    this.#d.report({ event: 'loop.attempt', at_ms: start, deadline_ms: start + this.#s.attemptDeadlineMs });
    // A slow attempt must not keep an expired set on disk past its expiry.
    const watch = this.#watchExpiry();
    try {
      const { nextRefreshAtMs } = await this.acquire(signal);
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

  #reportFailure(err: unknown, denied: boolean, nextAtMs: number | undefined): void {
    const audit = this.#audit(this.#lastToken);
    const message = err instanceof Error ? err.message : String(err);
    if (denied) {
      this.#d.report({
        event: 'lease.denied',
        ...audit,
        code: errorCode(err) as ErrorCode,
        decision_id: err instanceof PolicyDeniedError ? err.decisionId : undefined,
        reasons:
          err instanceof PolicyDeniedError
            ? err.reasons
            : err instanceof IdpError && err.oauthError !== undefined
              ? [errorCode(err), err.oauthError]
              : [errorCode(err)],
        message,
        next_attempt: nextAtMs === undefined ? undefined : new Date(nextAtMs).toISOString(),
      });
      return;
    }
    this.#d.report({
      event: 'lease.failed',
      ...audit,
      code: errorCode(err),
      message,
      retryable: isSidecarError(err) ? err.retryable : true,
      sts_request_id: err instanceof StsError ? err.requestId : undefined,
      http_status: err instanceof StsError || err instanceof IdpError ? err.httpStatus : undefined,
      set_kept_until: this.#onDisk ? formatExpiration(this.#onDisk.expiresAtMs) : undefined,
      next_attempt: nextAtMs === undefined ? undefined : new Date(nextAtMs).toISOString(),
    });
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

  #audit(token: Token | undefined): LeaseAudit {
    return {
      issuer: token?.issuer,
      subject: token?.subject,
      tenant: this.#s.tenant,
      bucket: this.#s.bucket,
      prefix: this.#s.prefix,
      backend: this.#s.backend,
      attempt: this.#attempt,
      ...(this.#d.identity ? { principal_type: token?.principalType, assurance: token?.assurance } : {}),
      workload_subject: this.#lastWorkloadSubject,
    };
  }

  async #timed<T>(target: 'flex_auth' | 'sts' | 'idp', call: () => Promise<T>): Promise<T> {
    const start = this.#d.clock.now();
    let outcome = 'ok';
    try {
      return await call();
    } catch (err) {
      outcome = errorCode(err);
      throw err;
    } finally {
      this.#d.report({
        event: 'call.finished',
        target,
        outcome,
        seconds: (this.#d.clock.now() - start) / 1000,
      });
    }
  }
}

/** Slack for clock rounding: STS expirations are whole seconds, the token's `exp` too. */
const TOKEN_EXP_SLACK_MS = 2_000;

/**
 * True when the STS granted less than asked and the credentials expire with the web token: the lease was
 * bounded by the token's `exp`, not by DurationSeconds. The refresh is scheduled from the real expiration
 * either way; this only says why the lease is short.
 */
export function cappedByTokenExp(exchange: Exchange): boolean {
  const { expiresAtMs } = exchange.credentials;
  const askedUntil = exchange.startedAtMs + exchange.ttlSeconds * 1000;
  return (
    expiresAtMs < askedUntil - TOKEN_EXP_SLACK_MS &&
    Math.abs(expiresAtMs - exchange.token.expiresAtMs) <= TOKEN_EXP_SLACK_MS
  );
}
