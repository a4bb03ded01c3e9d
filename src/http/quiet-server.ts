import http from 'node:http';
import type { Socket } from 'node:net';

/** The longest delay a Node timer accepts; longer ones fire after 1 ms instead. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Per-connection limits that replace http.Server's request and headers timeouts. */
export interface QuietServerLimits {
  /** A connection with no traffic for this long is closed (slow or stuck clients, idle keep-alive). */
  readonly idleTimeoutMs: number;
  /** No connection lives longer than this, traffic or not (a client trickling bytes). */
  readonly connectionDeadlineMs: number;
  /** How long an idle keep-alive connection is kept after a response. */
  readonly keepAliveTimeoutMs: number;
}

export const DEFAULT_QUIET_LIMITS: QuietServerLimits = {
  idleTimeoutMs: 10_000,
  connectionDeadlineMs: 30_000,
  keepAliveTimeoutMs: 5_000,
};

/**
 * An http.Server that sets no timer while no connection is open, so an idle process is not woken.
 * Node's server checks its request and headers timeouts with a 30 s interval timer that runs as long as
 * the server listens; here that interval is stretched to the maximum and cleared once listening, and the
 * same protection comes from timers that live only as long as a connection: an idle timeout and an
 * absolute deadline per socket.
 */
export function createQuietServer(
  handler: http.RequestListener,
  limits: QuietServerLimits = DEFAULT_QUIET_LIMITS,
): http.Server {
  const server = http.createServer(
    {
      // 0 disables both checks, which would otherwise need the interval.
      requestTimeout: 0,
      headersTimeout: 0,
      connectionsCheckingInterval: MAX_TIMER_MS,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
    },
    handler,
  );
  server.on('connection', (socket: Socket) => {
    socket.setTimeout(limits.idleTimeoutMs, () => socket.destroy());
    const deadline = setTimeout(() => socket.destroy(), limits.connectionDeadlineMs);
    deadline.unref();
    socket.once('close', () => clearTimeout(deadline));
  });
  server.on('listening', () => clearConnectionsCheck(server));
  return server;
}

/** Clears the interval http.Server starts on listen (its symbol is internal, so it is found by name). */
function clearConnectionsCheck(server: http.Server): void {
  const own = server as unknown as Record<symbol, unknown>;
  for (const s of Object.getOwnPropertySymbols(server)) {
    if (s.description === 'http.server.connectionsCheckingInterval') {
      clearInterval(own[s] as NodeJS.Timeout);
      own[s] = undefined;
    }
  }
}

/** Listens on host:port; resolves with the bound port (0 picks a free one). */
export async function listenQuietly(server: http.Server, host: string, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  return typeof address === 'object' && address ? address.port : port;
}

/** Stops listening and closes every open connection. */
export function closeQuietly(server: http.Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
