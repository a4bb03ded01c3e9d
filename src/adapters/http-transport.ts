import http from 'node:http';
import https from 'node:https';

export interface HttpRequest {
  readonly url: string;
  readonly method: 'GET' | 'POST' | 'PUT';
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly signal: AbortSignal;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

/** Why a request produced no response. */
export type TransportFailure = 'timeout' | 'aborted' | 'network' | 'too_large';

export class TransportError extends Error {
  readonly kind: TransportFailure;
  constructor(kind: TransportFailure, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransportError';
    this.kind = kind;
  }
}

/** One HTTP exchange; adapters receive this so tests can hand them any transport. */
export type HttpTransport = (request: HttpRequest) => Promise<HttpResponse>;

/**
 * A small node:http(s) client: a bounded response body, extra CAs, and no keep-alive pool to leak.
 * Lighter to load than fetch, and it lets the CA bundle be set per client instead of per process.
 */
export function createHttpTransport(options: {
  ca?: readonly string[];
  maxResponseBytes: number;
}): HttpTransport {
  const httpsAgent = new https.Agent({ keepAlive: false, ...(options.ca ? { ca: [...options.ca] } : {}) });
  return (request) =>
    new Promise<HttpResponse>((resolve, reject) => {
      const url = new URL(request.url);
      const isHttps = url.protocol === 'https:';
      if (request.signal.aborted) {
        reject(abortError(request.signal));
        return;
      }
      let settled = false;
      const onAbort = () => req.destroy(abortError(request.signal));
      // Exactly one outcome: a destroyed request can still emit 'end' or 'error' afterwards.
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        request.signal.removeEventListener('abort', onAbort);
        fn();
      };
      const fail = (err: Error) =>
        settle(() =>
          reject(
            err instanceof TransportError
              ? err
              : new TransportError('network', networkMessage(err), { cause: err }),
          ),
        );
      const headers: Record<string, string> = { ...request.headers, connection: 'close' };
      if (request.body !== undefined) headers['content-length'] = String(Buffer.byteLength(request.body));
      const req = (isHttps ? https : http).request(url, {
        method: request.method,
        headers,
        ...(isHttps ? { agent: httpsAgent } : { agent: false }),
      });
      request.signal.addEventListener('abort', onAbort, { once: true });
      req.on('error', fail);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > options.maxResponseBytes) {
            const err = new TransportError(
              'too_large',
              `response body exceeds ${options.maxResponseBytes} bytes`,
            );
            fail(err);
            req.destroy(err);
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () =>
          settle(() =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          ),
        );
        res.on('error', fail);
      });
      req.end(request.body);
    });
}

function abortError(signal: AbortSignal): TransportError {
  const reason: unknown = signal.reason;
  const timedOut = reason instanceof Error && reason.name === 'TimeoutError';
  return new TransportError(timedOut ? 'timeout' : 'aborted', timedOut ? 'deadline exceeded' : 'aborted', {
    cause: reason,
  });
}

function networkMessage(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code ? `${code}: ${err.message}` : err.message;
}
