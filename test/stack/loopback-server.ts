import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An HTTP server on loopback for the local stack's services: a handler that throws answers 500, and
 * close() drops kept-alive connections so a test never waits on them.
 */
export async function serveLoopback(
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<unknown>,
  options: { host?: string; port?: number } = {},
): Promise<{ origin: string; close(): Promise<void> }> {
  const host = options.host ?? '127.0.0.1';
  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, { connection: 'close' });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    origin: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
