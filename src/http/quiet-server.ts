import http from 'node:http';
import net from 'node:net';

/** Per-connection limits that replace http.Server's request and headers timeouts (and their interval). */
export interface QuietServerLimits {
  /** A connection with no traffic for this long is closed (slow or stuck clients, idle keep-alive). */
  readonly idleTimeoutMs: number;
  /**
   * A connection must deliver a complete request within this of opening or of its last response, however
   * it trickles bytes (a client dripping one byte a second never hits the idle timeout).
   */
  readonly requestDeadlineMs: number;
  /** How long an idle keep-alive connection is kept after a response. */
  readonly keepAliveTimeoutMs: number;
  /** Largest request head accepted (Node's default is 16 KiB). */
  readonly maxHeaderBytes?: number;
  /** Connections beyond this are refused at accept. */
  readonly maxConnections?: number;
}

export const DEFAULT_QUIET_LIMITS: QuietServerLimits = {
  idleTimeoutMs: 10_000,
  requestDeadlineMs: 30_000,
  keepAliveTimeoutMs: 5_000,
};

/** A listening quiet server. */
export interface QuietServer {
  readonly port: number;
  /** Stops listening and closes every open connection. */
  close(): Promise<void>;
}

/**
 * An HTTP server that sets no timer while no connection is open, so an idle process is not woken; public
 * API only. A listening http.Server checks its request and headers timeouts with a 30 s interval that
 * runs as long as it listens. Here a net.Server owns the socket and hands each connection to an
 * http.Server that never listens (the documented way to inject a connection: emit 'connection'), so no
 * interval starts; the same protection comes from timers that live only as long as a connection: its
 * idle timeout and a deadline for each complete request.
 */
export async function startQuietServer(options: {
  readonly host: string;
  readonly port: number;
  readonly handler: http.RequestListener;
  readonly limits?: QuietServerLimits;
}): Promise<QuietServer> {
  const limits = options.limits ?? DEFAULT_QUIET_LIMITS;
  const deadlines = requestDeadlines(limits.requestDeadlineMs);
  const server = http.createServer(
    {
      // 0 disables both checks, which would otherwise need the interval.
      requestTimeout: 0,
      headersTimeout: 0,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      ...(limits.maxHeaderBytes === undefined ? {} : { maxHeaderSize: limits.maxHeaderBytes }),
    },
    (req, res) => {
      // The request's head arrived: the handler answers it; the deadline restarts once it has.
      deadlines.disarm(req.socket);
      res.once('finish', () => deadlines.arm(req.socket));
      options.handler(req, res);
    },
  );
  // The idle timeout is http.Server's own per-socket timeout: a timer per open connection, none while idle.
  server.timeout = limits.idleTimeoutMs;
  server.on('timeout', (socket: net.Socket) => socket.destroy());
  server.on('clientError', (_err, socket: net.Socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  const sockets = new Set<net.Socket>();
  const listener = net.createServer((socket) => {
    sockets.add(socket);
    deadlines.arm(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      deadlines.disarm(socket);
    });
    server.emit('connection', socket);
  });
  if (limits.maxConnections !== undefined) listener.maxConnections = limits.maxConnections;
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(options.port, options.host, () => {
      listener.off('error', reject);
      resolve();
    });
  });
  const address = listener.address();
  return {
    port: typeof address === 'object' && address ? address.port : options.port,
    close: () =>
      new Promise<void>((resolve) => {
        listener.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** One timer per connection waiting for a request; none while a request is handled or nobody is connected. */
function requestDeadlines(deadlineMs: number) {
  const timers = new Map<net.Socket, NodeJS.Timeout>();
  const disarm = (socket: net.Socket) => {
    clearTimeout(timers.get(socket));
    timers.delete(socket);
  };
  const arm = (socket: net.Socket) => {
    disarm(socket);
    if (!socket.destroyed)
      timers.set(
        socket,
        setTimeout(() => socket.destroy(), deadlineMs),
      );
  };
  return { arm, disarm };
}
