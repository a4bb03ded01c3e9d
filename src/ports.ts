import type { ActionGroup } from './config/schema.ts';
import type { CredentialSet } from './domain/credentials.ts';
import type { AllowAnswer } from './domain/grant.ts';

/** A projected token that passed the local checks. `raw` is a secret: never log it. */
export interface Token {
  readonly raw: string;
  readonly issuer: string | undefined;
  readonly subject: string;
  readonly audience: readonly string[];
  readonly tenant: string | undefined;
  readonly issuedAtMs: number | undefined;
  readonly expiresAtMs: number;
  /** IAM Profile claims, when the token carries them (audit only). */
  readonly principalType?: string | undefined;
  readonly assurance?: string | undefined;
}

/** Reads the current token; throws a TokenError (with a stable code) when it fails a local check. */
export interface TokenSource {
  read(signal?: AbortSignal): Promise<Token>;
}

/**
 * Trades the workload's service-account token for an IAM Profile token at an identity provider (Keycloak
 * federated client authentication, or RFC 8693 token exchange). Called at every attempt: an IdP token is
 * never cached. Resolves with the exchanged token after the local checks (exp, nbf, aud); rejects with
 * IdpError (ERR_IDP_UNAVAILABLE / ERR_IDP_INVALID_RESPONSE / ERR_IDP_REFUSED) or a TokenError.
 */
export interface IdentityExchange {
  exchange(workloadToken: Token, signal?: AbortSignal): Promise<Token>;
}

/** The decision request, exactly as sent to flex-auth (see docs/flex-auth-contract.md). */
export interface DecisionRequest {
  readonly protected_system: 'object-storage';
  readonly tenant: string;
  readonly resource: { readonly bucket: string; readonly prefix: string };
  readonly actions: readonly ActionGroup[];
  readonly ttl_seconds: number;
}

/**
 * Asks the policy decision point. Resolves with an allow answer; rejects with PolicyDeniedError on an
 * explicit deny and PolicyError (ERR_POLICY_UNAVAILABLE / ERR_POLICY_INVALID_RESPONSE) otherwise.
 */
export interface PolicyClient {
  decide(request: DecisionRequest, token: string, signal?: AbortSignal): Promise<AllowAnswer>;
}

export interface AssumeRequest {
  /** The raw web identity token (secret). */
  readonly token: string;
  readonly roleArn: string | undefined;
  readonly sessionName: string;
  readonly durationSeconds: number;
  /** Compact session policy JSON. */
  readonly policy: string;
}

export interface AssumeResult {
  readonly credentials: CredentialSet;
  readonly requestId: string | undefined;
  readonly assumedRoleArn: string | undefined;
}

/** Exchanges the token for credentials; rejects with StsError carrying a stable code. */
export interface CredentialIssuer {
  assume(request: AssumeRequest, signal?: AbortSignal): Promise<AssumeResult>;
}

/** Where credential sets live. Every write replaces the whole set atomically. */
export interface CredentialSink {
  /**
   * Removes leftovers of an interrupted write; returns the expiry of a complete set already there and,
   * when all of it could be read back, the set itself (the endpoint serves it across a restart).
   */
  prepare(): Promise<{ expiresAtMs: number; set?: CredentialSet } | undefined>;
  /**
   * Replaces the set. On failure the error carries `committed: true` when the new set had already gone
   * live (only a later step failed), so the caller keeps tracking it for removal at its expiry.
   */
  write(set: CredentialSet): Promise<void>;
  remove(): Promise<void>;
}

/** Time, injected so the loop can be driven by a test clock. */
export interface Clock {
  now(): number;
  /** Resolves after `ms`, or early (without throwing) when `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}
