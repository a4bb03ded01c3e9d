import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { startQuietServer, type QuietServer } from './quiet-server.ts';
import { formatExpiration, type CredentialSet } from '../domain/credentials.ts';

/** Why a request was refused; each is logged at most once a minute. */
export type EndpointRefusal =
  | 'token_missing'
  | 'token_invalid'
  | 'host_forbidden'
  | 'no_credentials'
  | 'not_found'
  | 'method_not_allowed'
  | 'body_not_allowed';

/** Stable `code` of each refusal's JSON body. */
const REFUSALS: Record<EndpointRefusal, { status: number; code: string; message: string }> = {
  token_missing: {
    status: 401,
    code: 'ERR_ENDPOINT_TOKEN_MISSING',
    message: 'Authorization header required',
  },
  token_invalid: {
    status: 403,
    code: 'ERR_ENDPOINT_TOKEN_INVALID',
    message: 'Authorization token not accepted',
  },
  host_forbidden: {
    status: 403,
    code: 'ERR_ENDPOINT_HOST_FORBIDDEN',
    message: 'Host must be 127.0.0.1, [::1] or localhost',
  },
  no_credentials: {
    status: 503,
    code: 'ERR_ENDPOINT_NO_CREDENTIALS',
    message: 'no valid credential set right now; retry later',
  },
  not_found: { status: 404, code: 'ERR_ENDPOINT_NOT_FOUND', message: 'only /v1/credentials is served' },
  method_not_allowed: { status: 405, code: 'ERR_ENDPOINT_METHOD', message: 'only GET is allowed' },
  body_not_allowed: { status: 413, code: 'ERR_ENDPOINT_BODY', message: 'requests carry no body' },
};

export const CREDENTIALS_PATH = '/v1/credentials';
/** SDK requests are a few hundred bytes; anything near this is not an SDK. */
const MAX_HEADER_BYTES = 4096;
/** Every container of the pod shares loopback; a handful of SDK clients never need more. */
const MAX_CONNECTIONS = 64;
/** Per-socket idle/slow-client deadline (no server-wide interval timer, see startQuietServer). */
const SOCKET_TIMEOUT_MS = 10_000;
/**
 * A connection must deliver a complete request within this of opening or of its last response, however
 * it trickles bytes: otherwise a few slow clients could hold every one of MAX_CONNECTIONS for hours.
 */
const REQUEST_DEADLINE_MS = 10_000;
const LOG_EVERY_MS = 60_000;
const HOST = /^(127\.0\.0\.1|\[::1\]|localhost)(:\d{1,5})?$/i;

/** What the endpoint needs from the daemon. */
export interface CredentialsEndpointOptions {
  readonly host: string;
  readonly port: number;
  /** The caller's expected Authorization value (secret). */
  readonly token: string;
  /** Called when a token is refused: a new token if the source changed (rotated Secret), else undefined. */
  readonly reloadToken?: () => Promise<string | undefined>;
  /** The set to serve now (undefined: 503). */
  readonly current: (nowMs: number) => CredentialSet | undefined;
  readonly now: () => number;
  /** Called for a refusal at most once per reason and minute; `suppressed` counts the quiet ones. */
  readonly onRefused: (reason: EndpointRefusal, status: number, suppressed: number) => void;
  /** Deadline for a complete request per connection (tests shorten it); default 10 s. */
  readonly requestDeadlineMs?: number;
}

export type CredentialsEndpoint = QuietServer;

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Serves the AWS container-credentials protocol on loopback; no timer runs while idle (see startQuietServer). */
export async function startCredentialsEndpoint(
  options: CredentialsEndpointOptions,
): Promise<CredentialsEndpoint> {
  let expected = digest(options.token);
  const accepted = (given: string) => timingSafeEqual(digest(given), expected);
  const reloaded = async (given: string) => {
    const fresh = await options.reloadToken?.().catch(() => undefined);
    if (fresh !== undefined) expected = digest(fresh);
    return fresh !== undefined && accepted(given);
  };
  const lastLogged = new Map<EndpointRefusal, { atMs: number; suppressed: number }>();

  const refuse = (res: http.ServerResponse, reason: EndpointRefusal) => {
    const r = REFUSALS[reason];
    const now = options.now();
    const seen = lastLogged.get(reason);
    if (seen === undefined || now - seen.atMs >= LOG_EVERY_MS) {
      options.onRefused(reason, r.status, seen?.suppressed ?? 0);
      lastLogged.set(reason, { atMs: now, suppressed: 0 });
    } else {
      seen.suppressed++;
    }
    const headers: http.OutgoingHttpHeaders = {
      'content-type': 'application/json',
      'cache-control': 'no-store',
    };
    if (r.status === 503) headers['retry-after'] = '1';
    if (r.status === 405) headers.allow = 'GET';
    res.writeHead(r.status, headers);
    res.end(JSON.stringify({ code: r.code, message: r.message }));
  };

  const handler: http.RequestListener = (req, res) => {
    // No SDK request has a body: one that announces a body is refused unread and its connection closed.
    const length = req.headers['content-length'];
    if ((length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined) {
      res.shouldKeepAlive = false;
      res.on('finish', () => req.socket.destroy());
      return refuse(res, 'body_not_allowed');
    }
    req.resume();
    if ((req.url ?? '/').split('?')[0] !== CREDENTIALS_PATH) return refuse(res, 'not_found');
    if (req.method !== 'GET') return refuse(res, 'method_not_allowed');
    if (!HOST.test(req.headers.host ?? '')) return refuse(res, 'host_forbidden');
    const given = req.headers.authorization;
    if (given === undefined || given === '') return refuse(res, 'token_missing');
    if (!accepted(given)) {
      void reloaded(given).then((ok) => (ok ? serve(res) : refuse(res, 'token_invalid')));
      return;
    }
    serve(res);
  };
  function serve(res: http.ServerResponse) {
    const set = options.current(options.now());
    if (!set) return refuse(res, 'no_credentials');
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(
      JSON.stringify({
        AccessKeyId: set.accessKeyId,
        SecretAccessKey: set.secretAccessKey,
        Token: set.sessionToken,
        Expiration: formatExpiration(set.expiresAtMs),
      }),
    );
  }
  // Requests carry no body, so complete headers are a complete request: the deadline covers them.
  return startQuietServer({
    host: options.host,
    port: options.port,
    handler,
    limits: {
      idleTimeoutMs: SOCKET_TIMEOUT_MS,
      keepAliveTimeoutMs: SOCKET_TIMEOUT_MS,
      requestDeadlineMs: options.requestDeadlineMs ?? REQUEST_DEADLINE_MS,
      maxHeaderBytes: MAX_HEADER_BYTES,
      maxConnections: MAX_CONNECTIONS,
    },
  });
}
