/** Refresh tuning, all in milliseconds or fractions of the lease. */
export interface SchedulePolicy {
  /** Refresh once this fraction of the lease has passed (before jitter). */
  readonly refreshFraction: number;
  /** Up to this fraction of the lease is taken off the refresh time at random. */
  readonly refreshJitter: number;
  /** A set with this much or less left is not good enough to serve (readiness turns false). */
  readonly readyMarginMs: number;
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
}

/** The same tuning as the configuration gives it: fractions, and seconds where the policy has milliseconds. */
export interface ScheduleSeconds {
  readonly refreshFraction: number;
  readonly refreshJitter: number;
  readonly readyMarginSeconds: number;
  readonly backoffInitialSeconds: number;
  readonly backoffMaxSeconds: number;
}

/** The policy from its configured seconds (the sidecar's config, the fleet simulation's scenario). */
export function schedulePolicy(s: ScheduleSeconds): SchedulePolicy {
  return {
    refreshFraction: s.refreshFraction,
    refreshJitter: s.refreshJitter,
    readyMarginMs: s.readyMarginSeconds * 1000,
    backoffInitialMs: s.backoffInitialSeconds * 1000,
    backoffMaxMs: s.backoffMaxSeconds * 1000,
  };
}

/** The lifetime of the set on disk. */
export interface LeaseWindow {
  readonly issuedAtMs: number;
  readonly expiresAtMs: number;
}

/**
 * The refresh must happen while the set still has margin plus this slack left, so that a slow exchange
 * or a short retry still finishes before readiness would drop.
 */
export function refreshSlackMs(window: LeaseWindow, policy: SchedulePolicy): number {
  const usable = window.expiresAtMs - window.issuedAtMs - policy.readyMarginMs;
  return Math.max(0, Math.min(60_000, usable * 0.1));
}

/** The last moment a refresh may start: the set still has the margin plus the slack left. */
export function latestRefreshAt(window: LeaseWindow, policy: SchedulePolicy): number {
  return window.expiresAtMs - policy.readyMarginMs - refreshSlackMs(window, policy);
}

/** The kubelet replaces a projected token once this fraction of its life has passed. */
export const TOKEN_ROTATION_FRACTION = 0.8;

/**
 * When to refresh a lease the STS ended at the web token's `exp`. Re-sending the same token would get the
 * same expiry back, so the refresh waits for the token's expected replacement (at 80% of its life; the
 * token watch wakes the loop earlier when the new token arrives) instead of following the lease fraction,
 * but never past the latest moment the margin rule allows. `normalAt` is nextRefreshAt's answer.
 */
export function cappedLeaseRefreshAt(
  window: LeaseWindow,
  policy: SchedulePolicy,
  normalAt: number,
  token: { readonly issuedAtMs: number | undefined; readonly expiresAtMs: number },
): number {
  const latest = latestRefreshAt(window, policy);
  if (latest <= window.issuedAtMs) return normalAt;
  const replacedAt =
    token.issuedAtMs === undefined
      ? latest
      : token.issuedAtMs + (token.expiresAtMs - token.issuedAtMs) * TOKEN_ROTATION_FRACTION;
  return Math.min(Math.max(normalAt, replacedAt), latest);
}

/**
 * When to start the next refresh of a freshly written lease. `random` is a uniform draw in [0, 1): the
 * jitter spreads a fleet that started together over a window of the lease instead of a single instant.
 * The result is never later than the last moment that leaves the margin plus slack, and never earlier
 * than the issue time.
 */
export function nextRefreshAt(window: LeaseWindow, policy: SchedulePolicy, random: number): number {
  const lifetime = Math.max(0, window.expiresAtMs - window.issuedAtMs);
  const planned =
    window.issuedAtMs + lifetime * policy.refreshFraction - lifetime * policy.refreshJitter * random;
  const latest = latestRefreshAt(window, policy);
  // A lease no longer than the margin can never make the set ready; refreshing it at once would turn into
  // a loop of exchanges. Such a lease is refreshed on the plain fraction schedule instead.
  const at = latest > window.issuedAtMs ? Math.min(planned, latest) : planned;
  // The jitter never takes the refresh below a tenth of the fraction (config keeps jitter < fraction).
  return Math.max(window.issuedAtMs + lifetime * policy.refreshFraction * 0.1, at);
}

/** The cap of the retry delay after `failures` consecutive failures (1 = the first failure). */
export function backoffCapMs(failures: number, policy: SchedulePolicy): number {
  const exponent = Math.min(Math.max(failures - 1, 0), 30);
  return Math.min(policy.backoffMaxMs, policy.backoffInitialMs * 2 ** exponent);
}

/**
 * From the second failure in a row on, while a set is on disk, the retry is drawn over this fraction of
 * the time the set has left before readiness would drop (docs/reliability.md, "Retries after a failure").
 */
export const RETRY_SPREAD_FRACTION = 0.25;
/** The same for the first failure: short, so a blip is ridden over within a small part of the time left. */
export const FIRST_RETRY_SPREAD_FRACTION = 1 / 16;

/**
 * Delay before the next attempt after a failure.
 *
 * - The first failure retries within the initial backoff, or, while a set is on disk, within
 *   {@link FIRST_RETRY_SPREAD_FRACTION} of the time until it falls under the margin if that is longer
 *   (full jitter): a blip is ridden over soon, and a fleet hit by one outage does not return at once.
 * - Later failures use exponential backoff with full jitter, capped; but while a set is on disk, the
 *   window the delay is drawn from widens to {@link RETRY_SPREAD_FRACTION} of the time until the set
 *   falls under the readiness margin. A fleet that failed together in an outage then comes back spread
 *   over minutes instead of all within the backoff cap, while each sidecar still has at least three
 *   quarters of that time left when it retries. As the set ages the window shrinks with it, down to the
 *   plain backoff.
 * - The retry never sleeps past the moment the set would fall under the margin, so an outage that ends
 *   in time is noticed before readiness drops.
 */
export function retryDelayMs(
  failures: number,
  policy: SchedulePolicy,
  random: number,
  nowMs: number,
  onDisk: LeaseWindow | undefined,
): number {
  const cap = backoffCapMs(failures, policy);
  const untilMargin = onDisk ? onDisk.expiresAtMs - policy.readyMarginMs - nowMs : 0;
  const fraction = failures >= 2 ? RETRY_SPREAD_FRACTION : FIRST_RETRY_SPREAD_FRACTION;
  const window = untilMargin > 0 ? Math.max(cap, untilMargin * fraction) : cap;
  // A floor keeps a fleet that all drew near zero from retrying in a hot loop.
  let delay = Math.max(window * random, Math.min(cap, policy.backoffInitialMs) / 10);
  if (untilMargin > 0) delay = Math.min(delay, untilMargin);
  return delay;
}

/**
 * The schedule for the first lease of a run: the jitter widened to 80% of the refresh fraction, so the
 * first refresh lands anywhere in [0.2, 1] x fraction of the lease (defaults: 360-1800 s of 3600 s).
 * Pods that start together (a rollout, a node restart) then refresh apart from the first refresh on,
 * instead of staying clumped for hours (docs/benchmarks.md, fleet simulation).
 */
export function firstLeaseSchedule(policy: SchedulePolicy): SchedulePolicy {
  return { ...policy, refreshJitter: Math.max(policy.refreshJitter, policy.refreshFraction * 0.8) };
}
