import type { ActionGroup } from './config/schema.ts';
import type { CredentialSet } from './domain/credentials.ts';
import { narrowGrant, type DurationLimits } from './domain/grant.ts';
import { buildSessionPolicy, sessionNameFromSubject } from './domain/session-policy.ts';
import { errorCode, SidecarError, StsError } from './errors.ts';
import type { LeaseAudit, LeaseReporter } from './lease-events.ts';
import type {
  AssumeResult,
  Clock,
  CredentialIssuer,
  DecisionRequest,
  IdentityExchange,
  PolicyClient,
  Token,
  TokenSource,
} from './ports.ts';

/** What one workload asks for: the request every attempt makes. */
export interface VendingRequest {
  readonly tenant: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly actions: readonly ActionGroup[];
  readonly ttlSeconds: number;
  readonly roleArn: string | undefined;
  readonly sessionName: string | undefined;
  readonly backend: string;
  readonly durationLimits: DurationLimits;
}

/** The ports one attempt talks to. */
export interface VendingPorts {
  readonly tokens: TokenSource;
  readonly policy: PolicyClient;
  readonly issuer: CredentialIssuer;
  readonly clock: Clock;
  /** Receives a `call.finished` event for every outbound call. */
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
 * One attempt over the ports: token, identity exchange, tenant check, decision, grant, assume (stepping
 * the duration down when the role allows less). Nothing is kept between attempts except the audit of the
 * latest one (which identity it got as far as), so a failure is reported under the right names.
 */
export class VendingPipeline {
  readonly #r: VendingRequest;
  readonly #p: VendingPorts;
  #attempt = 0;
  #token: Token | undefined;
  #workloadSubject: string | undefined;

  constructor(request: VendingRequest, ports: VendingPorts) {
    this.#r = request;
    this.#p = ports;
  }

  /** The request's audit fields, with the identity the latest attempt got as far as. */
  audit(token: Token | undefined = this.#token): LeaseAudit {
    return {
      issuer: token?.issuer,
      subject: token?.subject,
      tenant: this.#r.tenant,
      bucket: this.#r.bucket,
      prefix: this.#r.prefix,
      backend: this.#r.backend,
      attempt: this.#attempt,
      ...(this.#p.identity ? { principal_type: token?.principalType, assurance: token?.assurance } : {}),
      workload_subject: this.#workloadSubject,
    };
  }

  /** One full exchange; nothing is written. Rejects with the step's typed error. */
  async attempt(signal?: AbortSignal): Promise<Exchange> {
    const r = this.#r;
    const startedAtMs = this.#p.clock.now();
    this.#attempt++;
    // Every attempt's audit starts empty: a failed token read must not name the previous attempt's identity.
    this.#workloadSubject = undefined;
    this.#token = undefined;
    const workload = await this.#p.tokens.read(signal);
    this.#workloadSubject = workload.subject;
    const token = await this.#identity(workload, signal);
    const request: DecisionRequest = {
      protected_system: 'object-storage',
      tenant: r.tenant,
      resource: { bucket: r.bucket, prefix: r.prefix },
      actions: r.actions,
      // Never ask policy for more than the STS could issue; a longer configured TTL is logged as stepped down.
      ttl_seconds: Math.min(r.ttlSeconds, r.durationLimits.maxSeconds),
    };
    const answer = await this.#timed('flex_auth', () => this.#p.policy.decide(request, token.raw, signal));
    const grant = narrowGrant({ actions: r.actions, ttlSeconds: r.ttlSeconds }, answer, r.durationLimits);
    const sessionName = r.sessionName ?? sessionNameFromSubject(token.subject);
    const policy = buildSessionPolicy({ bucket: r.bucket, prefix: r.prefix, actions: grant.actions });
    const assume = (durationSeconds: number) =>
      this.#timed('sts', () =>
        this.#p.issuer.assume(
          { token: token.raw, roleArn: r.roleArn, sessionName, durationSeconds, policy },
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
      if (errorCode(err) !== 'ERR_STS_DURATION_OUT_OF_RANGE' || ttlSeconds <= r.durationLimits.minSeconds)
        throw err;
      ttlSeconds = r.durationLimits.minSeconds;
      steppedDown = true;
      result = await assume(ttlSeconds);
    }
    if (result.credentials.expiresAtMs <= this.#p.clock.now()) {
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

  /** The token flex-auth and the STS see: the workload's own, or the IdP's in exchange for it. */
  async #identity(workload: Token, signal: AbortSignal | undefined): Promise<Token> {
    const identity = this.#p.identity;
    // A failed exchange must not be audited under the previous attempt's IAM Profile identity.
    this.#token = identity ? undefined : workload;
    const token = identity ? await this.#timed('idp', () => identity.exchange(workload, signal)) : workload;
    this.#token = token;
    if (identity && token.tenant === undefined) {
      throw new SidecarError(
        'ERR_TOKEN_TENANT_MISSING',
        'the identity provider issued a token without a tenant claim; refusing to ask for credentials',
      );
    }
    if (token.tenant !== undefined && token.tenant !== this.#r.tenant) {
      throw new SidecarError(
        'ERR_TOKEN_TENANT_MISMATCH',
        `token tenant claim does not match STS_SIDECAR_TENANT (${this.#r.tenant}); refusing to ask for credentials`,
      );
    }
    return token;
  }

  async #timed<T>(target: 'flex_auth' | 'sts' | 'idp', call: () => Promise<T>): Promise<T> {
    const start = this.#p.clock.now();
    let outcome = 'ok';
    try {
      return await call();
    } catch (err) {
      outcome = errorCode(err);
      throw err;
    } finally {
      this.#p.report({
        event: 'call.finished',
        target,
        outcome,
        seconds: (this.#p.clock.now() - start) / 1000,
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
