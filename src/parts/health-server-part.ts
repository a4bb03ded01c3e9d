import { SidecarError } from '../errors.ts';
import type { HealthView } from '../http/server.ts';
import type { Part } from './run-group.ts';

/** The health server as a part; `port` is known once it started. */
export interface HealthServerPart extends Part {
  readonly port: number | undefined;
}

/** Serves /healthz, /readyz and /metrics on `listen`; a port it cannot take is a configuration error. */
export function healthServerPart(listen: { host: string; port: number }, view: HealthView): HealthServerPart {
  let server: { port: number; close(): Promise<void> } | undefined;
  return {
    name: 'health-server',
    get port() {
      return server?.port;
    },
    start: async () => {
      // Loaded only here: once and credential-process never pay for the HTTP server.
      const { startHealthServer } = await import('../http/server.ts');
      server = await startHealthServer({ ...listen, view }).catch((err: unknown) => {
        throw new SidecarError(
          'ERR_CONFIG',
          `STS_SIDECAR_LISTEN: cannot listen on ${listen.host}:${listen.port} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
          { cause: err },
        );
      });
    },
    close: async () => server?.close(),
  };
}
