import * as z from 'zod';
import { formatExpiration, type CredentialSet } from '../domain/credentials.ts';
import { OutputError } from '../errors.ts';
import type { CredentialSink } from '../ports.ts';
import { TransportError, type HttpResponse, type HttpTransport } from './http-transport.ts';

/** The Secret keys the four values are written under (STS_SIDECAR_SECRET_KEYS, in this order). */
export interface SecretKeyNames {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: string;
}

export const DEFAULT_SECRET_KEYS: SecretKeyNames = {
  accessKeyId: 'ACCESS_KEY_ID',
  secretAccessKey: 'ACCESS_SECRET_KEY',
  sessionToken: 'ACCESS_SESSION_TOKEN',
  expiration: 'EXPIRATION',
};

export interface SecretSinkOptions {
  /** API server base URL, e.g. https://kubernetes.default.svc. */
  readonly apiUrl: string;
  readonly namespace: string;
  readonly name: string;
  readonly keys: SecretKeyNames;
  /** Carries the in-cluster CA; the adapter never builds its own. */
  readonly transport: HttpTransport;
  /** The pod's service-account token, read again for every request (the kubelet rotates it). */
  readonly readToken: () => Promise<string>;
  /** Deadline of each API call. */
  readonly timeoutMs: number;
  /**
   * Deadline of one whole prepare/write/remove, conflict retries included (default two call deadlines):
   * a run of 409s or a slow server cannot hold the loop or the shutdown longer than that.
   */
  readonly operationTimeoutMs?: number;
  /** Read-modify-write rounds tried when another writer changed the Secret in between (default 3). */
  readonly conflictAttempts?: number;
}

// Only what the adapter reads back; everything else of the object is sent back untouched.
const secretSchema = z
  .object({
    metadata: z.object({ resourceVersion: z.string().min(1) }).passthrough(),
    data: z.record(z.string(), z.string()).nullish(),
  })
  .passthrough();
type SecretObject = z.infer<typeof secretSchema>;

const statusSchema = z.object({ reason: z.string().max(64).optional() }).passthrough();

/**
 * Writes the credential set into one existing Kubernetes Secret, for consumers that can only read a
 * Secret. Every rotation is one read and one `PUT` carrying the `resourceVersion` read, so the API server
 * applies the whole set in a single update or refuses it with 409 when another writer got in between (then
 * the read-modify-write is repeated; keys other than the four are kept). No reader ever sees a partial set.
 * The Secret must exist (RBAC cannot grant `create` for one name); the service account needs get and update
 * on it, nothing else. A small client over the project's transport rather than @kubernetes/client-node:
 * two verbs on one object, and the library's load cost (see docs/benchmarks.md) exceeds the sidecar's own.
 */
export class KubernetesSecretSink implements CredentialSink {
  readonly #o: SecretSinkOptions;
  readonly #url: string;

  constructor(options: SecretSinkOptions) {
    this.#o = options;
    this.#url = `${options.apiUrl.replace(/\/+$/, '')}/api/v1/namespaces/${encodeURIComponent(options.namespace)}/secrets/${encodeURIComponent(options.name)}`;
  }

  /** namespace/name, for messages. */
  get target(): string {
    return `${this.#o.namespace}/${this.#o.name}`;
  }

  async prepare(signal?: AbortSignal): Promise<{ expiresAtMs: number } | undefined> {
    const secret = await this.#get(this.#operationSignal(signal));
    const raw = secret.data?.[this.#o.keys.expiration];
    if (raw === undefined || !this.#hasAll(secret)) return undefined;
    const ms = Date.parse(Buffer.from(raw, 'base64').toString('utf8').trim());
    return Number.isFinite(ms) ? { expiresAtMs: ms } : undefined;
  }

  /**
   * On failure `committed: true` means the PUT was sent but its outcome is unknown (deadline, stop, or the
   * connection broke before the answer; or a 504 from the API server): the set may be live, so the caller
   * keeps tracking it. A refused connection or a refusal by status is a set that did not land.
   */
  async write(set: CredentialSet, signal?: AbortSignal): Promise<void> {
    const k = this.#o.keys;
    const values: Record<string, string> = {
      [k.accessKeyId]: set.accessKeyId,
      [k.secretAccessKey]: set.secretAccessKey,
      [k.sessionToken]: set.sessionToken,
      [k.expiration]: formatExpiration(set.expiresAtMs),
    };
    const encoded = Object.fromEntries(
      Object.entries(values).map(([key, v]) => [key, Buffer.from(v, 'utf8').toString('base64')]),
    );
    // The single PUT either applies or not: a failed write never leaves the new set live.
    await this.#update((data) => ({ ...data, ...encoded }), 'write', signal);
  }

  async remove(signal?: AbortSignal): Promise<void> {
    const ours = new Set(Object.values(this.#o.keys));
    await this.#update(
      (data) => {
        if (!Object.keys(data).some((key) => ours.has(key))) return undefined;
        return Object.fromEntries(Object.entries(data).filter(([key]) => !ours.has(key)));
      },
      'remove',
      signal,
    );
  }

  #hasAll(secret: SecretObject): boolean {
    return Object.values(this.#o.keys).every((key) => secret.data?.[key] !== undefined);
  }

  /** Read, change data, PUT with the resourceVersion read; again on 409. `change` returns undefined for "nothing to do". */
  async #update(
    change: (data: Record<string, string>) => Record<string, string> | undefined,
    what: 'write' | 'remove',
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const attempts = this.#o.conflictAttempts ?? 3;
    const operation = this.#operationSignal(signal);
    for (let attempt = 1; ; attempt++) {
      const secret = await this.#get(operation);
      const data = change({ ...(secret.data ?? {}) });
      if (data === undefined) return;
      const res = await this.#call('PUT', operation, JSON.stringify({ ...secret, data }));
      if (res.status >= 200 && res.status < 300) return;
      if (res.status === 409 && attempt < attempts) continue;
      // 504: the API server gave up waiting for etcd, which may still apply the update.
      throw Object.assign(this.#statusError(res, what), { committed: res.status === 504 });
    }
  }

  /** The caller's stop signal (if any) and the deadline of the whole operation, in one. */
  #operationSignal(signal: AbortSignal | undefined): AbortSignal {
    const deadline = AbortSignal.timeout(this.#o.operationTimeoutMs ?? 2 * this.#o.timeoutMs);
    return signal ? AbortSignal.any([signal, deadline]) : deadline;
  }

  async #get(operation: AbortSignal): Promise<SecretObject> {
    const res = await this.#call('GET', operation);
    if (res.status !== 200) throw this.#statusError(res, 'read');
    let body: unknown;
    try {
      body = JSON.parse(res.body);
    } catch (err) {
      throw new OutputError('ERR_SECRET_UNAVAILABLE', `Secret ${this.target}: the API server sent no JSON`, {
        cause: err,
      });
    }
    const parsed = secretSchema.safeParse(body);
    if (!parsed.success) {
      throw new OutputError('ERR_SECRET_UNAVAILABLE', `Secret ${this.target}: the API server sent no Secret`);
    }
    return parsed.data;
  }

  async #call(method: 'GET' | 'PUT', operation: AbortSignal, body?: string): Promise<HttpResponse> {
    if (operation.aborted) {
      // Nothing was sent: not committed.
      throw new OutputError(
        'ERR_SECRET_UNAVAILABLE',
        `Secret ${this.target}: ${method === 'GET' ? 'read' : 'update'} not sent (${stopReason(operation)})`,
        { cause: operation.reason },
      );
    }
    let token: string;
    try {
      token = (await this.#o.readToken()).trim();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new OutputError(
        'ERR_SECRET_FORBIDDEN',
        `Secret ${this.target}: cannot read the service-account token (${code}) (STS_SIDECAR_KUBE_TOKEN_FILE)`,
        { cause: err },
      );
    }
    try {
      return await this.#o.transport({
        url: this.#url,
        method,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body }),
        signal: AbortSignal.any([operation, AbortSignal.timeout(this.#o.timeoutMs)]),
      });
    } catch (err) {
      const detail = err instanceof TransportError ? `${err.kind}: ${err.message}` : 'request failed';
      const unknown = method === 'PUT' && !neverSent(err);
      throw Object.assign(
        new OutputError(
          'ERR_SECRET_UNAVAILABLE',
          `Secret ${this.target}: API server ${new URL(this.#url).host} unavailable (${detail})${unknown ? '; the update may have been applied' : ''}`,
          { cause: err },
        ),
        { committed: unknown },
      );
    }
  }

  /** Only the status code and the API's reason word: a Status message may quote what was sent. */
  #statusError(res: HttpResponse, what: 'read' | 'write' | 'remove'): OutputError {
    let reason = '';
    try {
      reason = statusSchema.parse(JSON.parse(res.body)).reason ?? '';
    } catch {
      // not a Status object
    }
    const why = `HTTP ${res.status}${/^[A-Za-z]+$/.test(reason) ? ` ${reason}` : ''}`;
    const verb = what === 'read' ? 'get' : 'update';
    if (res.status === 401 || res.status === 403) {
      return new OutputError(
        'ERR_SECRET_FORBIDDEN',
        `Secret ${this.target}: ${what} refused (${why}); the service account needs ${verb} on this Secret (STS_SIDECAR_SECRET_NAME)`,
      );
    }
    if (res.status === 404) {
      return new OutputError(
        'ERR_SECRET_NOT_FOUND',
        `Secret ${this.target} does not exist (${why}); create it empty (the chart does) (STS_SIDECAR_SECRET_NAME, STS_SIDECAR_SECRET_NAMESPACE)`,
      );
    }
    if (res.status === 409) {
      return new OutputError(
        'ERR_SECRET_CONFLICT',
        `Secret ${this.target}: ${what} kept conflicting with another writer (${why})`,
      );
    }
    return new OutputError('ERR_SECRET_UNAVAILABLE', `Secret ${this.target}: ${what} failed (${why})`);
  }
}

// Failures that happen before a request leaves this host (no connection, no name, TLS refused): the API
// server never saw it. Anything else after sending (deadline, stop, reset, hang-up) leaves it unknown.
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

function neverSent(err: unknown): boolean {
  if (!(err instanceof TransportError) || err.kind !== 'network') return false;
  const code = (err.cause as NodeJS.ErrnoException | undefined)?.code ?? '';
  return NOT_SENT_CODES.has(code) || /CERT|TLS|SIGNATURE|ISSUER/.test(code);
}

function stopReason(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  return reason instanceof Error && reason.name === 'TimeoutError' ? 'deadline exceeded' : 'stopped';
}
