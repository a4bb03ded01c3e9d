/**
 * Every failure the sidecar reports carries one of these stable codes. Operators alert on them and the
 * docs list them; never rename one.
 */
export type ErrorCode =
  | 'ERR_CONFIG'
  | 'ERR_TOKEN_MISSING'
  | 'ERR_TOKEN_UNREADABLE'
  | 'ERR_TOKEN_EMPTY'
  | 'ERR_TOKEN_TOO_LARGE'
  | 'ERR_TOKEN_MALFORMED'
  | 'ERR_TOKEN_EXPIRED'
  | 'ERR_TOKEN_NOT_YET_VALID'
  | 'ERR_TOKEN_AUDIENCE'
  | 'ERR_TOKEN_TENANT_MISMATCH'
  | 'ERR_POLICY_DENIED'
  | 'ERR_POLICY_UNAVAILABLE'
  | 'ERR_POLICY_INVALID_RESPONSE'
  | 'ERR_POLICY_OBLIGATION_UNSUPPORTED'
  | 'ERR_TTL_BELOW_STS_MINIMUM'
  | 'ERR_NOTHING_GRANTED'
  | 'ERR_STS_INVALID_TOKEN'
  | 'ERR_STS_EXPIRED_TOKEN'
  | 'ERR_STS_ACCESS_DENIED'
  | 'ERR_STS_MALFORMED_POLICY'
  | 'ERR_STS_ROLE_UNKNOWN'
  | 'ERR_STS_DURATION_OUT_OF_RANGE'
  | 'ERR_STS_UNREACHABLE'
  | 'ERR_STS_INVALID_RESPONSE'
  | 'ERR_STS_REJECTED'
  | 'ERR_OUTPUT_DIR'
  | 'ERR_OUTPUT_WRITE'
  | 'ERR_ABORTED'
  | 'ERR_IDP_UNAVAILABLE'
  | 'ERR_IDP_INVALID_RESPONSE'
  | 'ERR_IDP_REFUSED'
  | 'ERR_TOKEN_TENANT_MISSING'
  | 'ERR_SECRET_FORBIDDEN'
  | 'ERR_SECRET_NOT_FOUND'
  | 'ERR_SECRET_CONFLICT'
  | 'ERR_SECRET_UNAVAILABLE';

/** Base class of every error the sidecar raises on purpose. */
export class SidecarError extends Error {
  readonly code: ErrorCode;
  /** Whether trying again later may succeed without anyone changing anything. */
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SidecarError';
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/** A configuration problem; the message names the variable and never echoes its value. */
export class ConfigError extends SidecarError {
  readonly issues: readonly string[];
  constructor(issues: readonly string[]) {
    super('ERR_CONFIG', `invalid configuration: ${issues.join('; ')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export class TokenError extends SidecarError {
  constructor(code: ErrorCode, message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    // A bad token is usually fixed by kubelet's next rotation, so the loop keeps trying.
    super(code, message, { retryable: true, ...options });
    this.name = 'TokenError';
  }
}

/** flex-auth said no. `reasons` come from the server and are safe to log. */
export class PolicyDeniedError extends SidecarError {
  readonly decisionId: string | undefined;
  readonly reasons: readonly string[];
  constructor(decisionId: string | undefined, reasons: readonly string[]) {
    super('ERR_POLICY_DENIED', `flex-auth denied the request (${reasons.join(', ') || 'no reason given'})`, {
      retryable: true,
    });
    this.name = 'PolicyDeniedError';
    this.decisionId = decisionId;
    this.reasons = reasons;
  }
}

export class PolicyError extends SidecarError {
  constructor(code: ErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { retryable: true, ...options });
    this.name = 'PolicyError';
  }
}

export class StsError extends SidecarError {
  readonly httpStatus: number | undefined;
  readonly requestId: string | undefined;
  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; retryable?: boolean; httpStatus?: number; requestId?: string } = {},
  ) {
    super(code, message, { retryable: options.retryable ?? true, cause: options.cause });
    this.name = 'StsError';
    this.httpStatus = options.httpStatus;
    this.requestId = options.requestId;
  }
}

export class OutputError extends SidecarError {
  constructor(code: ErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { retryable: true, ...options });
    this.name = 'OutputError';
  }
}

/**
 * The identity provider (STS_SIDECAR_IDP_TOKEN_URL) failed or refused. `oauthError` is the OAuth error
 * code of a refusal (e.g. invalid_client); the IdP's error_description is never kept, as it may echo a token.
 */
export class IdpError extends SidecarError {
  readonly oauthError: string | undefined;
  readonly httpStatus: number | undefined;
  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; oauthError?: string; httpStatus?: number } = {},
  ) {
    super(code, message, { retryable: true, cause: options.cause });
    this.name = 'IdpError';
    this.oauthError = options.oauthError;
    this.httpStatus = options.httpStatus;
  }
}

export function isSidecarError(err: unknown): err is SidecarError {
  return err instanceof SidecarError;
}

/** The code to report for any thrown value; foreign errors that escaped translation count as unexpected. */
export function errorCode(err: unknown): ErrorCode | 'ERR_UNEXPECTED' {
  return isSidecarError(err) ? err.code : 'ERR_UNEXPECTED';
}
