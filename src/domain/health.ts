/** What the health endpoints know; built only from explicit events, never from guesses. */
export interface HealthState {
  readonly startedAtMs: number;
  /** The set this process wrote and that is still on disk, if any. */
  readonly leaseExpiresAtMs: number | undefined;
  readonly lastSuccessAtMs: number | undefined;
  readonly consecutiveFailures: number;
  readonly lastErrorCode: string | undefined;
  /** When the loop promised to act next; a loop that misses this by far is stuck. */
  readonly nextWakeAtMs: number | undefined;
  /** An attempt is in flight and must finish by this time (its deadlines). */
  readonly busyUntilMs: number | undefined;
  readonly stopped: boolean;
}

export type HealthEvent =
  | { readonly type: 'attempt-started'; readonly atMs: number; readonly deadlineMs: number }
  | { readonly type: 'lease-written'; readonly atMs: number; readonly expiresAtMs: number }
  | { readonly type: 'lease-removed'; readonly atMs: number }
  | { readonly type: 'attempt-failed'; readonly atMs: number; readonly code: string }
  | { readonly type: 'sleeping'; readonly atMs: number; readonly untilMs: number }
  | { readonly type: 'stopped'; readonly atMs: number };

export function initialHealth(nowMs: number): HealthState {
  return {
    startedAtMs: nowMs,
    leaseExpiresAtMs: undefined,
    lastSuccessAtMs: undefined,
    consecutiveFailures: 0,
    lastErrorCode: undefined,
    nextWakeAtMs: nowMs,
    busyUntilMs: undefined,
    stopped: false,
  };
}

export function applyHealthEvent(state: HealthState, event: HealthEvent): HealthState {
  switch (event.type) {
    case 'attempt-started':
      return { ...state, busyUntilMs: event.deadlineMs, nextWakeAtMs: undefined };
    case 'lease-written':
      return {
        ...state,
        leaseExpiresAtMs: event.expiresAtMs,
        lastSuccessAtMs: event.atMs,
        consecutiveFailures: 0,
        lastErrorCode: undefined,
        busyUntilMs: undefined,
      };
    case 'lease-removed':
      return { ...state, leaseExpiresAtMs: undefined };
    case 'attempt-failed':
      return {
        ...state,
        consecutiveFailures: state.consecutiveFailures + 1,
        lastErrorCode: event.code,
        busyUntilMs: undefined,
      };
    case 'sleeping':
      return { ...state, nextWakeAtMs: event.untilMs, busyUntilMs: undefined };
    case 'stopped':
      return { ...state, stopped: true, nextWakeAtMs: undefined, busyUntilMs: undefined };
  }
}

/** Ready: a set this process wrote is on disk with more than the margin left. */
export function isReady(state: HealthState, nowMs: number, marginMs: number): boolean {
  return !state.stopped && state.leaseExpiresAtMs !== undefined && state.leaseExpiresAtMs - nowMs > marginMs;
}

/**
 * Live: the loop keeps its own promises. It is dead when it has stopped, or when it is overdue by more
 * than `graceMs` past the wake-up or deadline it announced (a wedged event loop or a hung await).
 */
export function isLive(state: HealthState, nowMs: number, graceMs: number): boolean {
  if (state.stopped) return false;
  const due = state.busyUntilMs ?? state.nextWakeAtMs;
  return due === undefined || nowMs <= due + graceMs;
}

/** A compact, secret-free view for /readyz and /healthz bodies. */
export function describeHealth(state: HealthState, nowMs: number, marginMs: number) {
  return {
    ready: isReady(state, nowMs, marginMs),
    seconds_left:
      state.leaseExpiresAtMs === undefined ? null : Math.floor((state.leaseExpiresAtMs - nowMs) / 1000),
    margin_seconds: Math.floor(marginMs / 1000),
    consecutive_failures: state.consecutiveFailures,
    last_error: state.lastErrorCode ?? null,
    seconds_since_success:
      state.lastSuccessAtMs === undefined ? null : Math.floor((nowMs - state.lastSuccessAtMs) / 1000),
  };
}
