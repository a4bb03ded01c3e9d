import * as z from 'zod';
import { IdpError } from '../errors.ts';
import type { IdentityExchange, Token } from '../ports.ts';
import { TransportError, type HttpTransport } from './http-transport.ts';
import { checkToken } from './token-file.ts';

/** How the workload token is presented: Keycloak federated client auth, or RFC 8693 token exchange. */
export type ExchangeMode = 'client-assertion' | 'token-exchange';

export interface IdentityExchangeOptions {
  readonly mode: ExchangeMode;
  readonly tokenUrl: string;
  readonly clientId: string | undefined;
  readonly audience: string | undefined;
  readonly scope: string | undefined;
  /** STS_SIDECAR_TOKEN_AUDIENCE: the exchanged token's aud must contain it when set. */
  readonly tokenAudience: string | undefined;
  readonly transport: HttpTransport;
  readonly timeoutMs: number;
  readonly now: () => number;
}

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** How the exchanged token's local-check messages name it. */
const SOURCE = 'the access token in the identity provider answer (STS_SIDECAR_IDP_TOKEN_URL)';

const successSchema = z.object({
  access_token: z
    .string()
    .min(1)
    .max(32 * 1024),
  token_type: z.string().max(64).optional(),
  issued_token_type: z.string().max(256).optional(),
});
const errorSchema = z.object({ error: z.string() });

/** OAuth error codes are ASCII words; anything else is not repeated (it could carry a token). */
const OAUTH_ERROR_CODE = /^[a-z][a-z0-9_]{0,63}$/;

/**
 * The OAuth errors that are a verdict on this workload (RFC 6749 5.2): its credentials or grant are not
 * accepted. Every other code (invalid_request, unsupported_grant_type, invalid_scope, unknown ones) says
 * the request or the IdP setup is wrong, which a deny would punish the workload for.
 */
const REFUSAL_CODES: ReadonlySet<string> = new Set([
  'invalid_client',
  'unauthorized_client',
  'invalid_grant',
]);

/**
 * The identity-exchange call over an injected transport. A refusal (invalid_client, unauthorized_client or
 * invalid_grant in a 4xx answer, e.g. invalid_client for a service account without a client) is
 * ERR_IDP_REFUSED, which the loop treats as a deny; any other OAuth error, outages, 5xx and answers it
 * cannot use are retried with the set kept. Only the sanitised OAuth error code is kept, never the IdP's
 * error_description or any other text from its answer.
 */
export class IdpIdentityExchange implements IdentityExchange {
  readonly #o: IdentityExchangeOptions;

  constructor(options: IdentityExchangeOptions) {
    this.#o = options;
  }

  async exchange(workloadToken: Token, signal?: AbortSignal): Promise<Token> {
    const o = this.#o;
    const deadline = AbortSignal.timeout(o.timeoutMs);
    const form = new URLSearchParams(
      o.mode === 'client-assertion'
        ? {
            grant_type: 'client_credentials',
            client_assertion_type: JWT_BEARER,
            client_assertion: workloadToken.raw,
          }
        : {
            grant_type: TOKEN_EXCHANGE,
            subject_token: workloadToken.raw,
            subject_token_type: JWT_TOKEN_TYPE,
            requested_token_type: ACCESS_TOKEN_TYPE,
          },
    );
    if (o.clientId !== undefined) form.set('client_id', o.clientId);
    if (o.audience !== undefined) form.set('audience', o.audience);
    if (o.scope !== undefined) form.set('scope', o.scope);
    const where = new URL(o.tokenUrl).origin;
    let response;
    try {
      response = await o.transport({
        url: o.tokenUrl,
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form.toString(),
        signal: signal ? AbortSignal.any([signal, deadline]) : deadline,
      });
    } catch (err) {
      if (err instanceof TransportError && err.kind === 'aborted') {
        throw new IdpError('ERR_ABORTED', 'identity provider call aborted', { cause: err });
      }
      if (err instanceof TransportError && err.kind === 'too_large') {
        throw new IdpError('ERR_IDP_INVALID_RESPONSE', `identity provider at ${where} answered too much`, {
          cause: err,
        });
      }
      const detail = err instanceof TransportError ? `${err.kind}: ${err.message}` : 'request failed';
      throw new IdpError('ERR_IDP_UNAVAILABLE', `identity provider at ${where} unavailable (${detail})`, {
        cause: err,
      });
    }
    const status = response.status;
    if (status >= 500 || status === 429) {
      throw new IdpError('ERR_IDP_UNAVAILABLE', `identity provider at ${where} answered HTTP ${status}`, {
        httpStatus: status,
      });
    }
    let body: unknown;
    try {
      body = JSON.parse(response.body);
    } catch {
      // The body is not repeated: a broken IdP could echo the request, token included.
      throw new IdpError(
        'ERR_IDP_INVALID_RESPONSE',
        `identity provider at ${where} answered HTTP ${status} with a body that is not JSON`,
        { httpStatus: status },
      );
    }
    if (status >= 400) {
      const refusal = errorSchema.safeParse(body);
      if (status < 500 && refusal.success) {
        const code = OAUTH_ERROR_CODE.test(refusal.data.error) ? refusal.data.error : 'unrecognised_error';
        if (REFUSAL_CODES.has(code)) {
          throw new IdpError(
            'ERR_IDP_REFUSED',
            `identity provider at ${where} refused this workload (${code}, HTTP ${status})`,
            { oauthError: code, httpStatus: status },
          );
        }
        throw new IdpError(
          'ERR_IDP_INVALID_RESPONSE',
          `identity provider at ${where} rejected the request (${code}, HTTP ${status}); check the STS_SIDECAR_IDP_* settings`,
          { oauthError: code, httpStatus: status },
        );
      }
      throw new IdpError(
        'ERR_IDP_INVALID_RESPONSE',
        `identity provider at ${where} answered HTTP ${status} without an OAuth error`,
        { httpStatus: status },
      );
    }
    const ok = successSchema.safeParse(body);
    if (status !== 200 || !ok.success) {
      const issue = ok.success ? undefined : ok.error.issues[0];
      throw new IdpError(
        'ERR_IDP_INVALID_RESPONSE',
        `identity provider at ${where} answered HTTP ${status} without a usable access_token${issue ? ` (${issue.path.join('.') || 'body'}: ${issue.code})` : ''}`,
        { httpStatus: status },
      );
    }
    if (ok.data.token_type !== undefined && ok.data.token_type.toLowerCase() !== 'bearer') {
      throw new IdpError(
        'ERR_IDP_INVALID_RESPONSE',
        `identity provider at ${where} issued a token whose token_type is not Bearer`,
      );
    }
    // The same local checks as the projected token (exp, nbf, aud); the tenant rule is the loop's.
    return checkToken(ok.data.access_token, SOURCE, o.tokenAudience, o.now());
  }
}
