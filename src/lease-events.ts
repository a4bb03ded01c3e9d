import type { ErrorCode } from './errors.ts';

/** Audit fields every lease event carries; none of them is a secret. */
export interface LeaseAudit {
  readonly issuer: string | undefined;
  readonly subject: string | undefined;
  readonly tenant: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly backend: string;
  readonly attempt: number;
  /** IAM Profile claims of the token flex-auth and the STS saw (identity exchange on). */
  readonly principal_type?: string | undefined;
  readonly assurance?: string | undefined;
  /** The workload's service-account subject (the projected token's sub). */
  readonly workload_subject?: string | undefined;
}

/**
 * What the lease loop reports. Events named like log events (`lease.*`) become exactly one log line
 * each; `loop.*` and `call.*` only feed health and metrics.
 */
export type LeaseEvent = (
  | (LeaseAudit & {
      readonly event: 'lease.acquired' | 'lease.renewed';
      readonly actions: readonly string[];
      readonly decision_id: string;
      readonly ttl_seconds: number;
      readonly requested_ttl_seconds: number;
      readonly stepped_down: boolean;
      /**
       * The STS gave less than asked and the credentials end when the projected token does (SeaweedFS caps
       * a lease at the web token's `exp`): the token's expirationSeconds bounds the lease.
       */
      readonly capped_by_token_exp: boolean;
      readonly expiration: string;
      readonly expires_at_ms: number;
      readonly access_key_id: string;
      readonly sts_request_id: string | undefined;
      readonly session_name: string;
      /** Absent for the one-shot commands (`once`, `credential-process`): nothing refreshes. */
      readonly next_refresh: string | undefined;
    })
  | (LeaseAudit & {
      readonly event: 'lease.denied';
      readonly code: ErrorCode;
      readonly decision_id: string | undefined;
      readonly reasons: readonly string[];
      readonly message: string;
      /** Absent for the one-shot commands: they do not try again. */
      readonly next_attempt: string | undefined;
    })
  | (LeaseAudit & {
      readonly event: 'lease.failed';
      readonly code: ErrorCode | 'ERR_UNEXPECTED';
      readonly message: string;
      readonly retryable: boolean;
      readonly sts_request_id: string | undefined;
      readonly http_status: number | undefined;
      readonly set_kept_until: string | undefined;
      /** Absent for the one-shot commands: they do not try again. */
      readonly next_attempt: string | undefined;
    })
  | {
      readonly event: 'lease.expired';
      readonly tenant: string;
      readonly expiration: string;
      readonly access_key_id: string | undefined;
    }
  | {
      readonly event: 'lease.revoked';
      readonly tenant: string;
      readonly reason: 'denied' | 'wipe_on_exit';
      readonly access_key_id: string | undefined;
    }
  | { readonly event: 'loop.attempt'; readonly at_ms: number; readonly deadline_ms: number }
  | { readonly event: 'loop.sleep'; readonly at_ms: number; readonly until_ms: number }
  | {
      readonly event: 'call.finished';
      readonly target: 'flex_auth' | 'sts' | 'idp';
      readonly outcome: string;
      readonly seconds: number;
    }
) & {
  /** The named lease (config file) the event is about; absent for the environment-only lease. */
  readonly lease?: string;
};

export type LeaseReporter = (event: LeaseEvent) => void;

/**
 * The reporter one named lease's loop is given: every event it reports carries `lease` (audit lines,
 * notifications, metrics labels, health). The environment-only lease has no name and its events stay as
 * they always were.
 */
export function forLease(name: string | undefined, report: LeaseReporter): LeaseReporter {
  return name === undefined ? report : (event) => report({ ...event, lease: name });
}

/** One reaction to lease events (health, metrics, log, notifier, credentials endpoint, ...). */
export type LeaseSubscriber = LeaseReporter;

/** The loop's reporter: hands every event to each subscriber in order, so none knows of another. */
export function fanOut(...subscribers: readonly LeaseSubscriber[]): LeaseReporter {
  return fanOutIsolated(
    (err) => {
      throw err;
    },
    ...subscribers,
  );
}

/**
 * Like fanOut, but a subscriber that throws never keeps the event from the ones after it: its error
 * goes to `onError` (with the subscriber's position) once every subscriber has had the event.
 */
export function fanOutIsolated(
  onError: (err: unknown, index: number) => void,
  ...subscribers: readonly LeaseSubscriber[]
): LeaseReporter {
  return (event) => {
    const failed: [unknown, number][] = [];
    subscribers.forEach((subscriber, i) => {
      try {
        subscriber(event);
      } catch (err) {
        failed.push([err, i]);
      }
    });
    for (const [err, i] of failed) onError(err, i);
  };
}

/** The event as logs and notifications show it: the internal millisecond expiry dropped (no secrets). */
export function publicFields(event: LeaseEvent): Record<string, unknown> {
  const { expires_at_ms: _ms, ...fields } = event as LeaseEvent & { expires_at_ms?: number };
  return fields;
}
