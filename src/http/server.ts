import type http from 'node:http';
import { startQuietServer, type QuietServer } from './quiet-server.ts';

/** What the endpoints read; the server never reaches into the loop. */
export interface HealthView {
  live(): { ok: boolean; body: object };
  ready(): { ok: boolean; body: object };
  metrics(): Promise<{ contentType: string; body: string }>;
}

/** Serves /healthz, /readyz and /metrics; everything else is 404. No timer runs between requests. */
export async function startHealthServer(options: {
  host: string;
  port: number;
  view: HealthView;
}): Promise<QuietServer> {
  const handler: http.RequestListener = (req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n');
    if (url === '/healthz' || url === '/readyz') {
      const r = url === '/healthz' ? options.view.live() : options.view.ready();
      return send(r.ok ? 200 : 503, 'application/json', JSON.stringify(r.body) + '\n');
    }
    if (url === '/metrics') {
      options.view.metrics().then(
        (m) => send(200, m.contentType, m.body),
        () => send(500, 'text/plain', 'metrics unavailable\n'),
      );
      return;
    }
    send(404, 'text/plain', 'not found\n');
  };
  return startQuietServer({ host: options.host, port: options.port, handler });
}
