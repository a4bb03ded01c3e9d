import http from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import { STSClient } from '@aws-sdk/client-sts';
import type { LeaseSpec } from '../config/schema.ts';
import type { Config } from '../config/schema.ts';
import { idpTokenUrlWarning } from '../config/idp-url.ts';
import { CredentialDirectory } from '../adapters/credential-dir.ts';
import { FlexAuthClient } from '../adapters/flex-auth.ts';
import { createHttpTransport } from '../adapters/http-transport.ts';
import { IdpIdentityExchange } from '../adapters/identity-exchange.ts';
import { createSecretSink } from '../adapters/secret-sink-wiring.ts';
import { StsCredentialIssuer } from '../adapters/sts.ts';
import { systemClock } from '../adapters/system-clock.ts';
import { schedulePolicy } from '../domain/schedule.ts';
import { FileTokenSource } from '../adapters/token-file.ts';
import { SidecarError } from '../errors.ts';
import type { LeaseSettings } from '../lease-loop.ts';
import type { Logger } from '../logger.ts';
import type { CredentialSink, IdentityExchange } from '../ports.ts';
import type { Part } from './run-group.ts';

/** flex-auth answers are a few hundred bytes; a cap stops a hostile or broken server from filling memory. */
const MAX_POLICY_RESPONSE_BYTES = 64 * 1024;
/** An IdP token answer is a few KiB (the access token plus a little JSON). */
const MAX_IDP_RESPONSE_BYTES = 64 * 1024;

/** What building the clients reads from the outside world. */
export interface ClientContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly readTextFile: (path: string) => string;
}

/**
 * The clients every lease loop shares: the token source, the identity exchange, flex-auth and the STS. As
 * a part it closes the STS client (its sockets) after the loops have stopped.
 */
export interface LeaseClients extends Part {
  readonly tokens: FileTokenSource;
  readonly identity: IdentityExchange | undefined;
  readonly policy: FlexAuthClient;
  readonly issuer: StsCredentialIssuer;
}

export function createLeaseClients(ctx: ClientContext): LeaseClients {
  const c = ctx.config;
  const timeoutMs = c.requestTimeoutSeconds * 1000;
  const ca = trustedCas(ctx);
  const insecureIdp = c.identityExchange === 'none' ? undefined : idpTokenUrlWarning(c.idpTokenUrl);
  if (insecureIdp !== undefined)
    ctx.logger.warn({ event: 'sidecar.config_warning', message: insecureIdp }, insecureIdp);
  // With the exchange on, the projected token's aud is the IdP's business (its issuer URL, for Keycloak);
  // STS_SIDECAR_TOKEN_AUDIENCE then applies to the exchanged token, the one flex-auth and the STS see.
  const tokens = new FileTokenSource({
    path: c.tokenFile,
    audience: c.identityExchange === 'none' ? c.tokenAudience : undefined,
    now: systemClock.now,
  });
  const identity =
    c.identityExchange !== 'none' && c.idpTokenUrl !== undefined
      ? new IdpIdentityExchange({
          mode: c.identityExchange,
          tokenUrl: c.idpTokenUrl,
          clientId: c.idpClientId,
          audience: c.idpAudience,
          scope: c.idpScope,
          tokenAudience: c.tokenAudience,
          transport: createHttpTransport({ ...(ca ? { ca } : {}), maxResponseBytes: MAX_IDP_RESPONSE_BYTES }),
          timeoutMs,
          now: systemClock.now,
        })
      : undefined;
  const policy = new FlexAuthClient({
    url: c.flexAuthUrl,
    transport: createHttpTransport({ ...(ca ? { ca } : {}), maxResponseBytes: MAX_POLICY_RESPONSE_BYTES }),
    timeoutMs,
  });
  const sts = stsClient(c, timeoutMs, ca);
  const dialect = c.backend === 'seaweedfs' || c.backend === 'minio' ? c.backend : 'aws';
  const issuer = new StsCredentialIssuer({ client: sts, timeoutMs, dialect });
  return { name: 'clients', tokens, identity, policy, issuer, close: async () => sts.destroy() };
}

function stsClient(c: Config, timeoutMs: number, ca: string[] | undefined): STSClient {
  return new STSClient({
    region: c.stsRegion,
    ...(c.stsEndpoint === undefined ? {} : { endpoint: c.stsEndpoint }),
    // The loop owns retries (with jitter and the readiness deadline); SDK retries would hide outages.
    maxAttempts: 1,
    requestHandler: {
      requestTimeout: timeoutMs,
      connectionTimeout: timeoutMs,
      // No keep-alive: refreshes are half an hour apart, and an idle pooled socket wakes the idle process
      // when the server closes it (RGW after 65 s): one of the "0 wake-ups between refreshes" sources.
      httpAgent: new http.Agent({ keepAlive: false, maxSockets: 2 }),
      httpsAgent: new https.Agent({ keepAlive: false, maxSockets: 2, ...(ca ? { ca } : {}) }),
    },
  });
}

/** Where a lease's set goes: its directory, or its Secret (namespace/name as `target`). */
export function createSink(
  ctx: ClientContext,
  lease: LeaseSpec,
): { sink: CredentialSink; target: string | undefined } {
  const c = ctx.config;
  if (!c.secret)
    return {
      sink: new CredentialDirectory({ dir: lease.outputDir, fileMode: c.fileMode }),
      target: undefined,
    };
  const sink = createSecretSink(
    { ...c.secret, name: lease.secretName ?? c.secret.name },
    {
      readTextFile: ctx.readTextFile,
      timeoutMs: c.requestTimeoutSeconds * 1000,
    },
  );
  return { sink, target: sink.target };
}

/** What the lease asks for and how its loop behaves, from the configuration. */
export function leaseSettings(c: Config, lease: LeaseSpec, identityExchange: boolean): LeaseSettings {
  return {
    tenant: c.tenant,
    bucket: lease.bucket,
    prefix: lease.prefix,
    actions: lease.actions,
    ttlSeconds: lease.ttlSeconds,
    roleArn: lease.roleArn,
    sessionName: lease.sessionName,
    backend: c.backend,
    durationLimits: { minSeconds: c.stsMinDurationSeconds, maxSeconds: c.stsMaxDurationSeconds },
    schedule: schedulePolicy(c),
    // token read + three calls with their deadlines (flex-auth, STS, the STS step-down retry) + the
    // write, with room to spare; one more call when the identity exchange is on.
    attemptDeadlineMs: (identityExchange ? 4 : 3) * c.requestTimeoutSeconds * 1000 + 10_000,
  };
}

function trustedCas(ctx: ClientContext): string[] | undefined {
  const file = ctx.config.caFile;
  if (file === undefined) return undefined;
  let pem: string;
  try {
    pem = ctx.readTextFile(file);
  } catch (err) {
    throw new SidecarError(
      'ERR_CONFIG',
      `STS_SIDECAR_CA_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      { cause: err },
    );
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new SidecarError('ERR_CONFIG', `STS_SIDECAR_CA_FILE: ${file} holds no PEM certificate`);
  }
  // An explicit `ca` replaces Node's bundle; the custom CA is meant to be trusted in addition to it.
  return [...rootCertificates, pem];
}
