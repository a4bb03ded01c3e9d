import { formatExpiration } from './domain/credentials.ts';
import {
  errorCode,
  isSidecarError,
  IdpError,
  PolicyDeniedError,
  StsError,
  type ErrorCode,
} from './errors.ts';
import type { LeaseAudit, LeaseEvent } from './lease-events.ts';
import { cappedByTokenExp, type Exchange } from './vending-pipeline.ts';

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

const isoOrUndefined = (ms: number | undefined) =>
  ms === undefined ? undefined : new Date(ms).toISOString();

/** lease.acquired (or lease.renewed) for an exchange; `nextRefreshAtMs` is absent for the one-shot commands. */
export function acquiredEvent(
  audit: LeaseAudit,
  exchange: Exchange,
  o: { renewed: boolean; requestedTtlSeconds: number; nextRefreshAtMs: number | undefined },
): LeaseEvent {
  return {
    event: o.renewed ? 'lease.renewed' : 'lease.acquired',
    ...audit,
    actions: exchange.actions,
    decision_id: exchange.decisionId,
    ttl_seconds: exchange.ttlSeconds,
    requested_ttl_seconds: o.requestedTtlSeconds,
    stepped_down: exchange.steppedDown,
    capped_by_token_exp: cappedByTokenExp(exchange),
    expiration: formatExpiration(exchange.credentials.expiresAtMs),
    expires_at_ms: exchange.credentials.expiresAtMs,
    access_key_id: exchange.credentials.accessKeyId,
    sts_request_id: exchange.stsRequestId,
    session_name: exchange.sessionName,
    next_refresh: isoOrUndefined(o.nextRefreshAtMs),
  };
}

/** lease.denied or lease.failed for an attempt's error; `nextAtMs` is absent for the one-shot commands. */
export function failureEvent(
  audit: LeaseAudit,
  err: unknown,
  o: { denied: boolean; keptUntilMs: number | undefined; nextAtMs: number | undefined },
): LeaseEvent {
  const message = err instanceof Error ? err.message : String(err);
  if (o.denied) {
    return {
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
      next_attempt: isoOrUndefined(o.nextAtMs),
    };
  }
  return {
    event: 'lease.failed',
    ...audit,
    code: errorCode(err),
    message,
    retryable: isSidecarError(err) ? err.retryable : true,
    sts_request_id: err instanceof StsError ? err.requestId : undefined,
    http_status: err instanceof StsError || err instanceof IdpError ? err.httpStatus : undefined,
    set_kept_until: o.keptUntilMs === undefined ? undefined : formatExpiration(o.keptUntilMs),
    next_attempt: isoOrUndefined(o.nextAtMs),
  };
}
