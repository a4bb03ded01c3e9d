import type { Config } from '../config/schema.ts';
import { formatEndpointAddress } from '../config/load.ts';
import type { CredentialSet } from '../domain/credentials.ts';
import { SidecarError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Part } from './run-group.ts';

/** The credentials endpoint as a part; `port` is known once it started. */
export interface CredentialsEndpointPart extends Part {
  readonly port: number | undefined;
}

/** Serves the served set to the pod's SDKs; its modules load only when configured (esbuild inlines them). */
export function credentialsEndpointPart(o: {
  readonly config: Config;
  readonly logger: Logger;
  readonly current: (nowMs: number) => CredentialSet | undefined;
  readonly now: () => number;
}): CredentialsEndpointPart {
  const { config, logger } = o;
  const address = config.credentialsEndpoint!;
  const tokenFile = config.credentialsEndpointTokenFile!;
  let endpoint: { port: number; close(): Promise<void> } | undefined;
  return {
    name: 'credentials-endpoint',
    get port() {
      return endpoint?.port;
    },
    start: async () => {
      const [{ startCredentialsEndpoint }, { loadOrCreateEndpointToken, endpointTokenReloader }] =
        await Promise.all([
          import('../http/credentials-endpoint.ts'),
          import('../adapters/endpoint-token.ts'),
        ]);
      const token = await loadOrCreateEndpointToken(tokenFile, config.fileMode);
      endpoint = await startCredentialsEndpoint({
        host: address.host,
        port: address.port,
        token,
        reloadToken: endpointTokenReloader(tokenFile),
        current: o.current,
        now: o.now,
        onRefused: (reason, status, suppressed) =>
          logger.warn(
            { event: 'endpoint.refused', reason, status, suppressed_since_last: suppressed },
            'credentials request refused',
          ),
      }).catch((err: unknown) => {
        throw new SidecarError(
          'ERR_CONFIG',
          `STS_SIDECAR_CREDENTIALS_ENDPOINT: cannot listen on ${formatEndpointAddress(address)} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
          { cause: err },
        );
      });
    },
    close: async () => endpoint?.close(),
  };
}
