import * as z from 'zod';
import type { AllowAnswer } from '../domain/grant.ts';
import { PolicyDeniedError, PolicyError } from '../errors.ts';
import type { DecisionRequest, PolicyClient } from '../ports.ts';
import { TransportError, type HttpTransport } from './http-transport.ts';

const allowSchema = z.object({
  decision: z.literal('allow'),
  decision_id: z.string().min(1).max(256),
  ttl_seconds: z.number().int().positive().optional(),
  actions: z.array(z.string().max(64)).max(64).optional(),
  obligations: z.record(z.string(), z.unknown()).optional(),
  reasons: z.array(z.string()).optional(),
});

const denySchema = z.object({
  decision: z.literal('deny'),
  decision_id: z.string().max(256).optional(),
  reasons: z.array(z.string().max(256)).max(64).optional(),
});

/** The flex-auth decision call over an injected transport. See docs/flex-auth-contract.md. */
export class FlexAuthClient implements PolicyClient {
  readonly #url: string;
  readonly #transport: HttpTransport;
  readonly #timeoutMs: number;

  constructor(options: { url: string; transport: HttpTransport; timeoutMs: number }) {
    this.#url = options.url;
    this.#transport = options.transport;
    this.#timeoutMs = options.timeoutMs;
  }

  async decide(request: DecisionRequest, token: string, signal?: AbortSignal): Promise<AllowAnswer> {
    const deadline = AbortSignal.timeout(this.#timeoutMs);
    let response;
    try {
      response = await this.#transport({
        url: this.#url,
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          accept: 'application/json',
        },
        body: JSON.stringify(request),
        signal: signal ? AbortSignal.any([signal, deadline]) : deadline,
      });
    } catch (err) {
      if (err instanceof TransportError && err.kind === 'aborted') {
        throw new PolicyError('ERR_ABORTED', 'flex-auth call aborted', { cause: err });
      }
      const detail = err instanceof TransportError ? `${err.kind}: ${err.message}` : 'request failed';
      throw new PolicyError(
        'ERR_POLICY_UNAVAILABLE',
        `flex-auth at ${origin(this.#url)} unavailable (${detail})`,
        { cause: err },
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(response.body);
    } catch (err) {
      throw new PolicyError(
        'ERR_POLICY_INVALID_RESPONSE',
        `flex-auth answered HTTP ${response.status} with a body that is not JSON`,
        {
          cause: err,
        },
      );
    }
    if (response.status === 200 || response.status === 403) {
      const deny = denySchema.safeParse(body);
      if (deny.success) throw new PolicyDeniedError(deny.data.decision_id, deny.data.reasons ?? []);
    }
    if (response.status === 200) {
      const allow = allowSchema.safeParse(body);
      if (allow.success) {
        return {
          decisionId: allow.data.decision_id,
          ttlSeconds: allow.data.ttl_seconds,
          actions: allow.data.actions,
          obligations: allow.data.obligations,
        };
      }
      const issue = allow.error.issues[0];
      throw new PolicyError(
        'ERR_POLICY_INVALID_RESPONSE',
        `flex-auth answer has the wrong shape (${issue ? `${issue.path.join('.') || 'body'}: ${issue.message}` : 'unknown'})`,
      );
    }
    throw new PolicyError('ERR_POLICY_UNAVAILABLE', `flex-auth answered HTTP ${response.status}`);
  }
}

function origin(url: string): string {
  return new URL(url).origin;
}
