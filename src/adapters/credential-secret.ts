import { z } from 'zod';
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

  async prepare(): Promise<{ expiresAtMs: number } | undefined> {
    const secret = await this.#get();
    const raw = secret.data?.[this.#o.keys.expiration];
    if (raw === undefined || !this.#hasAll(secret)) return undefined;
    const ms = Date.parse(Buffer.from(raw, 'base64').toString('utf8').trim());
    return Number.isFinite(ms) ? { expiresAtMs: ms } : undefined;
  }

  async write(set: CredentialSet): Promise<void> {
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
    await this.#update((data) => ({ ...data, ...encoded }), 'write');
  }

  async remove(): Promise<void> {
    const ours = new Set(Object.values(this.#o.keys));
    await this.#update((data) => {
      if (!Object.keys(data).some((key) => ours.has(key))) return undefined;
      return Object.fromEntries(Object.entries(data).filter(([key]) => !ours.has(key)));
    }, 'remove');
  }

  #hasAll(secret: SecretObject): boolean {
    return Object.values(this.#o.keys).every((key) => secret.data?.[key] !== undefined);
  }

  /** Read, change data, PUT with the resourceVersion read; again on 409. `change` returns undefined for "nothing to do". */
  async #update(
    change: (data: Record<string, string>) => Record<string, string> | undefined,
    what: 'write' | 'remove',
  ): Promise<void> {
    const attempts = this.#o.conflictAttempts ?? 3;
    for (let attempt = 1; ; attempt++) {
      const secret = await this.#get();
      const data = change({ ...(secret.data ?? {}) });
      if (data === undefined) return;
      const res = await this.#call('PUT', JSON.stringify({ ...secret, data }));
      if (res.status >= 200 && res.status < 300) return;
      if (res.status === 409 && attempt < attempts) continue;
      throw this.#statusError(res, what);
    }
  }

  async #get(): Promise<SecretObject> {
    const res = await this.#call('GET');
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

  async #call(method: 'GET' | 'PUT', body?: string): Promise<HttpResponse> {
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
        signal: AbortSignal.timeout(this.#o.timeoutMs),
      });
    } catch (err) {
      const detail = err instanceof TransportError ? `${err.kind}: ${err.message}` : 'request failed';
      throw new OutputError(
        'ERR_SECRET_UNAVAILABLE',
        `Secret ${this.target}: API server ${new URL(this.#url).host} unavailable (${detail})`,
        { cause: err },
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
