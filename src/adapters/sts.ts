import { Readable } from 'node:stream';
import { AssumeRoleWithWebIdentityCommand, type STSClient } from '@aws-sdk/client-sts';
import { StsError, type ErrorCode } from '../errors.ts';
import type { AssumeRequest, AssumeResult, CredentialIssuer } from '../ports.ts';

/** STS error codes (AWS names, also what RGW puts in its S3-style <Error> body) to ours. */
const CODE_MAP: Readonly<Record<string, ErrorCode>> = {
  InvalidIdentityToken: 'ERR_STS_INVALID_TOKEN',
  InvalidIdentityTokenException: 'ERR_STS_INVALID_TOKEN',
  IDPRejectedClaim: 'ERR_STS_INVALID_TOKEN',
  IDPRejectedClaimException: 'ERR_STS_INVALID_TOKEN',
  ExpiredToken: 'ERR_STS_EXPIRED_TOKEN',
  ExpiredTokenException: 'ERR_STS_EXPIRED_TOKEN',
  AccessDenied: 'ERR_STS_ACCESS_DENIED',
  AccessDeniedException: 'ERR_STS_ACCESS_DENIED',
  MalformedPolicyDocument: 'ERR_STS_MALFORMED_POLICY',
  MalformedPolicyDocumentException: 'ERR_STS_MALFORMED_POLICY',
  PackedPolicyTooLarge: 'ERR_STS_MALFORMED_POLICY',
  PackedPolicyTooLargeException: 'ERR_STS_MALFORMED_POLICY',
  IDPCommunicationError: 'ERR_STS_UNREACHABLE',
  IDPCommunicationErrorException: 'ERR_STS_UNREACHABLE',
  RegionDisabledException: 'ERR_STS_REJECTED',
};

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);

/** Node's certificate-verification and TLS failures (trusted CAs: STS_SIDECAR_CA_FILE). */
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|UNABLE_TO_|SELF_SIGNED_|DEPTH_ZERO_|CERT_)/;

/** An STS error code is a short identifier; anything else is server-controlled text and is not logged. */
const STS_CODE = /^[A-Za-z][A-Za-z0-9._:-]{0,63}$/;

interface SdkErrorShape {
  name?: string;
  Code?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number; requestId?: string };
  $response?: { statusCode?: number };
}

/** STS answers are a few KiB; anything far larger is not an STS answer. */
export const MAX_STS_RESPONSE_BYTES = 1024 * 1024;

const RAW_BODY = Symbol('stsSidecarRawErrorBody');

/**
 * AssumeRoleWithWebIdentity over an injected STSClient; every failure becomes an StsError.
 *
 * Two middlewares go onto the client: one next to the transport reads every response body with a size
 * cap and keeps the text of error bodies; one around the SDK's deserializer attaches that text to the
 * error. Ceph RGW answers STS errors S3-style (`<Error><Code>…`), which the SDK's Query parser reports as
 * `Unknown`: the raw body is the only place the real code is.
 */
export class StsCredentialIssuer implements CredentialIssuer {
  readonly #client: STSClient;
  readonly #timeoutMs: number;
  readonly #dialect: StsDialect;

  /** `dialect` is the backend's error vocabulary (STS_SIDECAR_BACKEND); unset means the AWS one. */
  constructor(options: { client: STSClient; timeoutMs: number; dialect?: StsDialect }) {
    this.#client = options.client;
    this.#timeoutMs = options.timeoutMs;
    this.#dialect = options.dialect ?? 'aws';
    const stack = this.#client.middlewareStack;
    if (!stack.identify().some((m) => m.startsWith('stsSidecarBodyCap'))) {
      stack.add(
        (next, context) => async (args) => {
          const result = await next(args);
          const response = result.response as { statusCode?: number; body?: unknown };
          if (response.body instanceof Readable) {
            const body = await readCapped(response.body, MAX_STS_RESPONSE_BYTES);
            if ((response.statusCode ?? 0) >= 400)
              (context as Record<symbol, unknown>)[RAW_BODY] = body.toString('utf8');
            response.body = Readable.from([body]);
          }
          return result;
        },
        { step: 'deserialize', priority: 'low', name: 'stsSidecarBodyCap' },
      );
      stack.add(
        (next, context) => async (args) => {
          try {
            return await next(args);
          } catch (err) {
            const raw = (context as Record<symbol, unknown>)[RAW_BODY];
            if (typeof raw === 'string' && typeof err === 'object' && err !== null)
              (err as Record<symbol, unknown>)[RAW_BODY] = raw;
            throw err;
          }
        },
        { step: 'deserialize', priority: 'high', name: 'stsSidecarErrorBody' },
      );
    }
  }

  async assume(request: AssumeRequest, signal?: AbortSignal): Promise<AssumeResult> {
    const deadline = AbortSignal.timeout(this.#timeoutMs);
    const abortSignal = signal ? AbortSignal.any([signal, deadline]) : deadline;
    let output;
    try {
      output = await this.#client.send(
        new AssumeRoleWithWebIdentityCommand({
          WebIdentityToken: request.token,
          RoleSessionName: request.sessionName,
          DurationSeconds: request.durationSeconds,
          Policy: request.policy,
          // The SDK types RoleArn as required, but MinIO's claim mode must not receive one; an undefined
          // member is left out of the request.
          RoleArn: request.roleArn as string,
        }),
        { abortSignal },
      );
    } catch (err) {
      throw translateStsError(err, deadline.aborted, this.#dialect);
    }
    const c = output.Credentials;
    const requestId = output.$metadata.requestId;
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) {
      const missing = ['AccessKeyId', 'SecretAccessKey', 'SessionToken', 'Expiration'].filter(
        (k) => !c?.[k as keyof typeof c],
      );
      throw new StsError('ERR_STS_INVALID_RESPONSE', `STS answer lacks ${missing.join(', ')}`, { requestId });
    }
    const expiresAtMs = c.Expiration instanceof Date ? c.Expiration.getTime() : Number.NaN;
    if (!Number.isFinite(expiresAtMs)) {
      throw new StsError('ERR_STS_INVALID_RESPONSE', 'STS answer has an unreadable Expiration', {
        requestId,
      });
    }
    return {
      credentials: {
        accessKeyId: c.AccessKeyId,
        secretAccessKey: c.SecretAccessKey,
        sessionToken: c.SessionToken,
        expiresAtMs,
      },
      requestId,
      assumedRoleArn: output.AssumedRoleUser?.Arn,
    };
  }
}

/**
 * Whose error vocabulary an STS answer is in. SeaweedFS answers a bad signature, issuer, audience or a
 * missing claim with InvalidParameterValue (never InvalidIdentityToken), the same code as a DurationSeconds
 * out of range; the message tells the two apart. MinIO answers every refusal (token, duration, role,
 * session policy) with InvalidParameterValue; its message tells them apart (see {@link MINIO_REASONS}).
 */
export type StsDialect = 'aws' | 'seaweedfs' | 'minio';

/** What one of MinIO's InvalidParameterValue messages means: our code and a short reason to log. */
interface MinioReason {
  readonly pattern: RegExp;
  readonly code: ErrorCode;
  readonly reason: string;
  /** False for a refusal only a configuration change cures (the role, the policy). */
  readonly retryable: boolean;
}

/**
 * MinIO's InvalidParameterValue messages, as measured against a real MinIO (test/conformance/sts-errors):
 * golang-jwt's texts for the token, MinIO's own for the rest. Only the reason is logged, never the
 * message: a JWKS fetch failure there carries the issuer's internal URL. Token problems are retryable like
 * RGW's AccessDenied (the kubelet's next token may be accepted; a new token wakes the loop at once); the
 * role and the session policy are not (nothing changes until the configuration does).
 */
const MINIO_REASONS: readonly MinioReason[] = [
  {
    pattern: /invalid token expiry/i,
    code: 'ERR_STS_DURATION_OUT_OF_RANGE',
    reason: 'DurationSeconds outside 900..31536000',
    retryable: true,
  },
  {
    pattern: /token is expired|token expired/i,
    code: 'ERR_STS_EXPIRED_TOKEN',
    reason: 'token expired',
    retryable: true,
  },
  {
    pattern: /used before issued|not valid yet/i,
    code: 'ERR_STS_INVALID_TOKEN',
    reason: 'token not yet valid (iat/nbf)',
    retryable: true,
  },
  {
    pattern: /verification error|signature is invalid/i,
    code: 'ERR_STS_INVALID_TOKEN',
    reason: 'token signature',
    retryable: true,
  },
  {
    pattern: /no public key found for kid|invalid kid value/i,
    code: 'ERR_STS_INVALID_TOKEN',
    reason: 'token kid not in the JWKS',
    retryable: true,
  },
  {
    pattern: /`(aud|azp)` claim invalid/i,
    code: 'ERR_STS_INVALID_TOKEN',
    reason: 'token aud/azp is not the client id',
    retryable: true,
  },
  {
    pattern: /claim missing from the JWT/i,
    code: 'ERR_STS_INVALID_TOKEN',
    reason: 'token lacks the policy claim',
    retryable: true,
  },
  {
    pattern: /signing method|token contains an invalid number of segments|malformed/i,
    code: 'ERR_STS_INVALID_TOKEN',
    reason: 'token malformed or its algorithm refused',
    retryable: true,
  },
  // The JWKS refetch after an unknown kid failed: the issuer is unreachable from MinIO.
  {
    pattern:
      /dial tcp|connection refused|no such host|i\/o timeout|unexpected error returned by|context deadline/i,
    code: 'ERR_STS_UNREACHABLE',
    reason: 'MinIO could not fetch the issuer JWKS',
    retryable: true,
  },
  {
    pattern: /role .* does not exist|error processing roleArn/i,
    code: 'ERR_STS_ROLE_UNKNOWN',
    reason: 'RoleArn unknown to MinIO',
    retryable: false,
  },
  {
    pattern: /none of the given policies/i,
    code: 'ERR_STS_ROLE_UNKNOWN',
    reason: 'the MinIO policy named is not defined',
    retryable: false,
  },
  {
    pattern:
      /session policy|version cannot be empty|invalid (action|effect|resource|condition|statement|principal)|policy|invalid character|unexpected end of JSON/i,
    code: 'ERR_STS_MALFORMED_POLICY',
    reason: 'session policy refused',
    retryable: false,
  },
];

/** MinIO's 503s while its IAM or OpenID provider is not loaded yet (it started before its issuer). */
const MINIO_NOT_INITIALIZED = new Set(['STSNotInitialized', 'STSIAMNotInitialized']);

/** Foreign SDK, network and parser errors to a stable code; the message never carries the token. */
export function translateStsError(err: unknown, timedOut: boolean, dialect: StsDialect = 'aws'): StsError {
  const e = (typeof err === 'object' && err !== null ? err : {}) as SdkErrorShape;
  const status = e.$metadata?.httpStatusCode ?? e.$response?.statusCode;
  const requestId = e.$metadata?.requestId;
  const base = { cause: err, httpStatus: status, requestId };
  const deadline = () =>
    new StsError(
      'ERR_STS_UNREACHABLE',
      'STS call exceeded its deadline (STS_SIDECAR_REQUEST_TIMEOUT_SECONDS)',
      base,
    );
  if (timedOut) return deadline();
  if (e.name === 'AbortError') return new StsError('ERR_ABORTED', 'STS call aborted', base);
  const netCode = e.code ?? (e as { cause?: { code?: string } }).cause?.code;
  // The SDK names some socket errors TimeoutError (ECONNRESET "socket hang up"): the code says more.
  if (netCode && NETWORK_CODES.has(netCode) && netCode !== 'ETIMEDOUT') {
    return new StsError('ERR_STS_UNREACHABLE', `STS unreachable (${netCode})`, base);
  }
  if (e.name === 'TimeoutError' || netCode === 'ETIMEDOUT') return deadline();
  if (netCode && TLS_CODE.test(netCode)) {
    return new StsError(
      'ERR_STS_UNREACHABLE',
      `STS TLS connection refused (${netCode}; trusted CAs: STS_SIDECAR_CA_FILE)`,
      base,
    );
  }
  if (e.code === 'ERR_STS_RESPONSE_TOO_LARGE') {
    return new StsError(
      'ERR_STS_INVALID_RESPONSE',
      `STS answer exceeds ${MAX_STS_RESPONSE_BYTES} bytes`,
      base,
    );
  }
  const raw = (err as Record<symbol, unknown> | undefined)?.[RAW_BODY];
  const rawCode = typeof raw === 'string' ? /<Code>([A-Za-z0-9._-]{1,64})<\/Code>/.exec(raw)?.[1] : undefined;
  const anyCode = [e.Code, rawCode, e.name].find(
    (c) => c !== undefined && c !== 'Unknown' && c !== 'UnknownError',
  );
  const stsCode = anyCode === undefined || STS_CODE.test(anyCode) ? anyCode : 'unrecognised error code';
  const detail = `${stsCode ?? 'no error code'}${status ? `, HTTP ${status}` : ''}`;
  if (dialect === 'minio' && stsCode !== undefined && MINIO_NOT_INITIALIZED.has(stsCode)) {
    return new StsError('ERR_STS_UNREACHABLE', `STS not ready: its issuer was unreachable (${detail})`, base);
  }
  const mapped = stsCode ? CODE_MAP[stsCode] : undefined;
  if (mapped)
    return new StsError(mapped, `STS refused the exchange (${detail})`, {
      ...base,
      retryable: mapped !== 'ERR_STS_MALFORMED_POLICY',
    });
  if (
    stsCode === 'ValidationError' ||
    stsCode === 'InvalidParameterValue' ||
    stsCode === 'InvalidArgument' ||
    stsCode === 'InvalidInput'
  ) {
    // Ceph RGW answers a DurationSeconds outside [rgw_sts_min_session_duration, role MaxSessionDuration]
    // with InvalidArgument and an empty <Message/>. Its only other InvalidArgument is a bad
    // RoleSessionName, which the config schema and sessionNameFromSubject rule out.
    const rawMessage =
      typeof raw === 'string' ? /<Message>([\s\S]*?)<\/Message>|<Message\/>/.exec(raw) : null;
    const rgwBlankInvalidArgument =
      rawCode === 'InvalidArgument' && rawMessage !== null && (rawMessage[1] ?? '').trim() === '';
    if (/duration/i.test(e.message ?? '') || rgwBlankInvalidArgument) {
      return new StsError('ERR_STS_DURATION_OUT_OF_RANGE', `STS refused DurationSeconds (${detail})`, base);
    }
    if (dialect === 'minio' && stsCode === 'InvalidParameterValue') {
      const known = MINIO_REASONS.find((r) => r.pattern.test(e.message ?? ''));
      if (known)
        return new StsError(known.code, `STS refused the exchange (${detail}: ${known.reason})`, {
          ...base,
          retryable: known.retryable,
        });
    }
    if (dialect === 'seaweedfs' && stsCode === 'InvalidParameterValue') {
      return new StsError('ERR_STS_INVALID_TOKEN', `STS refused the exchange (${detail})`, {
        ...base,
        retryable: true,
      });
    }
    return new StsError('ERR_STS_REJECTED', `STS rejected the request (${detail})`, base);
  }
  if (status !== undefined) {
    if (status >= 500) return new StsError('ERR_STS_UNREACHABLE', `STS failed (${detail})`, base);
    if (status === 403 || status === 401)
      return new StsError('ERR_STS_ACCESS_DENIED', `STS refused the exchange (${detail})`, base);
    if (status >= 400) return new StsError('ERR_STS_REJECTED', `STS rejected the request (${detail})`, base);
    // A 2xx that the SDK could not parse.
    return new StsError('ERR_STS_INVALID_RESPONSE', `STS answer could not be parsed (${detail})`, base);
  }
  if (e.name === 'SyntaxError' || /XML|parse|Deserializ/i.test(e.message ?? '')) {
    return new StsError('ERR_STS_INVALID_RESPONSE', 'STS answer could not be parsed', base);
  }
  return new StsError('ERR_STS_UNREACHABLE', `STS call failed (${e.name ?? 'error'})`, base);
}

async function readCapped(stream: Readable, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    size += b.length;
    if (size > max) {
      stream.destroy();
      throw Object.assign(new Error(`STS response exceeds ${max} bytes`), {
        code: 'ERR_STS_RESPONSE_TOO_LARGE',
      });
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}
