import type { ActionGroup } from '../config/schema.ts';
import { SidecarError } from '../errors.ts';

/** What the sidecar asked flex-auth for. */
export interface GrantRequest {
  readonly actions: readonly ActionGroup[];
  readonly ttlSeconds: number;
}

/** An allow answer, as parsed at the boundary. */
export interface AllowAnswer {
  readonly decisionId: string;
  readonly ttlSeconds: number | undefined;
  readonly actions: readonly string[] | undefined;
  readonly obligations: Readonly<Record<string, unknown>> | undefined;
}

/** STS limits on DurationSeconds. */
export interface DurationLimits {
  readonly minSeconds: number;
  readonly maxSeconds: number;
}

export interface NarrowedGrant {
  readonly actions: readonly ActionGroup[];
  /** What DurationSeconds will be. */
  readonly ttlSeconds: number;
  /** True when the STS maximum, not the policy, set the TTL. */
  readonly steppedDown: boolean;
}

/** Obligations the sidecar knows how to honour; any other one fails closed. */
export const SUPPORTED_OBLIGATIONS = ['max_ttl_seconds'] as const;

/**
 * Applies an allow answer to the request. The answer may only narrow: the TTL is the minimum of what
 * was asked, what was granted and any `max_ttl_seconds` obligation; the actions are the intersection.
 * A grant wider than the request is narrowed silently, never honoured. An obligation this sidecar
 * cannot enforce, an empty action set, or a TTL under the STS minimum is refused (fail closed).
 */
export function narrowGrant(
  request: GrantRequest,
  answer: AllowAnswer,
  limits: DurationLimits,
): NarrowedGrant {
  let ttl = request.ttlSeconds;
  if (answer.ttlSeconds !== undefined) ttl = Math.min(ttl, answer.ttlSeconds);
  for (const [key, value] of Object.entries(answer.obligations ?? {})) {
    if (key === 'max_ttl_seconds' && typeof value === 'number' && Number.isFinite(value) && value > 0) {
      ttl = Math.min(ttl, Math.floor(value));
    } else {
      throw new SidecarError(
        'ERR_POLICY_OBLIGATION_UNSUPPORTED',
        `flex-auth decision ${answer.decisionId} carries obligation "${key}" that the sidecar cannot enforce`,
      );
    }
  }
  const granted =
    answer.actions === undefined
      ? request.actions
      : request.actions.filter((a) => answer.actions!.includes(a));
  if (granted.length === 0) {
    throw new SidecarError(
      'ERR_NOTHING_GRANTED',
      `flex-auth decision ${answer.decisionId} grants none of the actions asked for`,
    );
  }
  if (ttl < limits.minSeconds) {
    throw new SidecarError(
      'ERR_TTL_BELOW_STS_MINIMUM',
      `flex-auth decision ${answer.decisionId} grants ${ttl}s, below the STS minimum of ${limits.minSeconds}s (STS_SIDECAR_STS_MIN_DURATION_SECONDS)`,
    );
  }
  const steppedDown = ttl > limits.maxSeconds;
  return { actions: granted, ttlSeconds: Math.min(ttl, limits.maxSeconds), steppedDown };
}
