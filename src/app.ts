import http from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import { STSClient } from '@aws-sdk/client-sts';
import type { Config } from './config/schema.ts';
import { describeConfig } from './config/load.ts';
import { toCredentialProcess, type CredentialSet } from './domain/credentials.ts';
import { describeHealth, isLive, isReady } from './domain/health.ts';
import { CredentialDirectory } from './adapters/credential-dir.ts';
import { createSecretSink } from './adapters/secret-sink-wiring.ts';
import { FlexAuthClient } from './adapters/flex-auth.ts';
import { createHttpTransport } from './adapters/http-transport.ts';
import { IdpIdentityExchange } from './adapters/identity-exchange.ts';
import { StsCredentialIssuer } from './adapters/sts.ts';
import { systemClock } from './adapters/system-clock.ts';
import { FileTokenSource, watchTokenDirectory } from './adapters/token-file.ts';
import { fanOutIsolated, type LeaseReporter } from './lease-events.ts';
import { LeaseLoop } from './lease-loop.ts';
import type { CredentialSink } from './ports.ts';
import type { Logger } from './logger.ts';
import { SidecarError } from './errors.ts';
import { createHealthTracker } from './subscribers/health.ts';
import { logSubscriber } from './subscribers/log.ts';
import { metricsSubscriber } from './subscribers/metrics.ts';
import { createServedCredentials } from './subscribers/credentials.ts';
import { createHeapCollector } from './subscribers/heap.ts';
import { formatEndpointAddress } from './config/load.ts';
import { idpTokenUrlWarning } from './config/idp-url.ts';

/** How long shutdown waits for notifications in flight, and again after aborting them. */
const NOTIFY_DRAIN_MS = 2000;

/** flex-auth answers are a few hundred bytes; a cap stops a hostile or broken server from filling memory. */
const MAX_POLICY_RESPONSE_BYTES = 64 * 1024;
/** An IdP token answer is a few KiB (the access token plus a little JSON). */
const MAX_IDP_RESPONSE_BYTES = 64 * 1024;

/** What the composition root needs from the outside world; main.ts provides it. */
export interface AppContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly readTextFile: (path: string) => string;
  readonly random?: () => number;
  /** Sends a signal to a process (the PID-file notification); main.ts passes process.kill. */
  readonly kill?: (pid: number, signal: NodeJS.Signals) => void;
}

interface Wiring {
  readonly loop: LeaseLoop;
  readonly tokens: FileTokenSource;
  readonly sink: CredentialSink;
  /** namespace/name of the Secret sink, when it is on. */
  readonly secretTarget: string | undefined;
  readonly close: () => void;
}

function trustedCas(ctx: AppContext): string[] | undefined {
  const file = ctx.config.caFile;
  if (file === undefined) return undefined;
  let pem: string;
  try {
    pem = ctx.readTextFile(file);
  } catch (err) {
    throw new SidecarError(
      'ERR_CONFIG',
      `STS_SIDECAR_CA_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      {
        cause: err,
      },
    );
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new SidecarError('ERR_CONFIG', `STS_SIDECAR_CA_FILE: ${file} holds no PEM certificate`);
  }
  // An explicit `ca` replaces Node's bundle; the custom CA is meant to be trusted in addition to it.
  return [...rootCertificates, pem];
}

function wire(
  ctx: AppContext,
  report: LeaseReporter,
  wrapSink: (sink: CredentialSink) => CredentialSink = (sink) => sink,
): Wiring {
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
  const secretSink = c.secret
    ? createSecretSink(c.secret, { readTextFile: ctx.readTextFile, timeoutMs })
    : undefined;
  const sink: CredentialSink =
    secretSink ?? new CredentialDirectory({ dir: c.outputDir, fileMode: c.fileMode });
  const stsClient = new STSClient({
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
  const loop = new LeaseLoop(
    {
      tenant: c.tenant,
      bucket: c.bucket,
      prefix: c.prefix,
      actions: c.actions,
      ttlSeconds: c.ttlSeconds,
      roleArn: c.roleArn,
      sessionName: c.sessionName,
      backend: c.backend,
      durationLimits: { minSeconds: c.stsMinDurationSeconds, maxSeconds: c.stsMaxDurationSeconds },
      schedule: {
        refreshFraction: c.refreshFraction,
        refreshJitter: c.refreshJitter,
        readyMarginMs: c.readyMarginSeconds * 1000,
        backoffInitialMs: c.backoffInitialSeconds * 1000,
        backoffMaxMs: c.backoffMaxSeconds * 1000,
      },
      // token read + three calls with their deadlines (flex-auth, STS, the STS step-down retry) + the
      // write, with room to spare; one more call when the identity exchange is on.
      attemptDeadlineMs: (identity ? 4 : 3) * timeoutMs + 10_000,
    },
    {
      tokens,
      policy: new FlexAuthClient({
        url: c.flexAuthUrl,
        transport: createHttpTransport({
          ...(ca ? { ca } : {}),
          maxResponseBytes: MAX_POLICY_RESPONSE_BYTES,
        }),
        timeoutMs,
      }),
      issuer: new StsCredentialIssuer({
        client: stsClient,
        timeoutMs,
        dialect: c.backend === 'seaweedfs' || c.backend === 'minio' ? c.backend : 'aws',
      }),
      sink: wrapSink(sink),
      clock: systemClock,
      random: ctx.random ?? Math.random,
      report,
      identity,
    },
  );
  return { loop, tokens, sink, secretTarget: secretSink?.target, close: () => stsClient.destroy() };
}

/** `once`: write one set and return; throws the attempt's error. */
export async function runOnce(ctx: AppContext, signal: AbortSignal): Promise<void> {
  const w = wire(ctx, logSubscriber(ctx.logger));
  try {
    await w.loop.attemptOnce(signal, { write: true });
  } finally {
    w.close();
  }
}

/** `credential-process`: one exchange, nothing written; returns the credential_process JSON. */
export async function runCredentialProcess(ctx: AppContext, signal: AbortSignal): Promise<string> {
  const w = wire(ctx, logSubscriber(ctx.logger));
  try {
    const exchange = await w.loop.attemptOnce(signal, { write: false });
    return JSON.stringify(toCredentialProcess(exchange.credentials));
  } finally {
    w.close();
  }
}

/** The daemon handle main.ts drives with signals. */
export interface Daemon {
  /** Resolves when the loop has stopped and everything is closed. */
  readonly done: Promise<void>;
  /** Port of the health server, when it listens. */
  readonly port: number | undefined;
  /** Port of the credentials endpoint, when it listens. */
  readonly credentialsPort: number | undefined;
  refreshNow(): void;
}

/** `run`: the lease loop, the health server and the token watcher until `signal` aborts. */
export async function startDaemon(ctx: AppContext, signal: AbortSignal): Promise<Daemon> {
  const { config, logger } = ctx;
  const now = systemClock.now;
  const marginMs = config.readyMarginSeconds * 1000;
  const tracker = createHealthTracker(now);
  const health = () => tracker.state();
  const stop = new AbortController();
  const stopAll = () => stop.abort();
  signal.addEventListener('abort', stopAll, { once: true });

  // Loaded only here: once and credential-process never pay for the HTTP server or prom-client.
  const [{ createMetrics }, { startHealthServer }] = await Promise.all([
    import('./http/metrics.ts'),
    import('./http/server.ts'),
  ]);
  const metrics = createMetrics({ now, isReady: () => isReady(health(), now(), marginMs) });

  const served = createServedCredentials();
  // Loaded only when configured: most pods use the files and never pay for these.
  const notifyModule =
    config.notifySignal || config.notifyUrl || config.notifyCommand
      ? await import('./subscribers/notifier.ts')
      : undefined;
  const notifier = notifyModule
    ? notifyModule.createNotifier({
        ...(config.notifySignal && config.notifyPidFile
          ? { signal: { name: config.notifySignal, pidFile: config.notifyPidFile } }
          : {}),
        ...(config.notifyUrl ? { url: config.notifyUrl } : {}),
        ...(config.notifyCommand ? { command: config.notifyCommand } : {}),
        timeoutMs: config.requestTimeoutSeconds * 1000,
        logger,
        kill: ctx.kill ?? noKill,
      })
    : undefined;
  const subscriberFailed = new Set<number>();
  const report: LeaseReporter = fanOutIsolated(
    (err, index) => {
      // Once per subscriber: a broken one would otherwise log on every event.
      if (subscriberFailed.has(index)) return;
      subscriberFailed.add(index);
      logger.error(
        { event: 'subscriber.failed', subscriber: index, error: err instanceof Error ? err.name : 'error' },
        'lease event subscriber failed',
      );
    },
    // First: a deny clears the served set whatever the subscribers after it do.
    served.subscriber,
    tracker.subscriber,
    metricsSubscriber(metrics),
    logSubscriber(logger),
    ...(notifier ? [notifier.subscriber] : []),
    createHeapCollector(),
  );

  const w = wire(ctx, report, served.wrap);
  // Liveness grace: a wake-up may be late by GC pauses or a busy node; minutes late means stuck.
  const graceMs = 60_000;
  const server = config.listen
    ? await startHealthServer({
        host: config.listen.host,
        port: config.listen.port,
        view: {
          live: () => ({
            ok: isLive(health(), now(), graceMs),
            body: { live: isLive(health(), now(), graceMs) },
          }),
          ready: () => ({
            ok: isReady(health(), now(), marginMs),
            body: describeHealth(health(), now(), marginMs),
          }),
          metrics: async () => ({
            contentType: metrics.registry.contentType,
            body: await metrics.registry.metrics(),
          }),
        },
      }).catch((err: unknown) => {
        w.close();
        throw new SidecarError(
          'ERR_CONFIG',
          `STS_SIDECAR_LISTEN: cannot listen on ${config.listen?.host}:${config.listen?.port} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
          { cause: err },
        );
      })
    : undefined;

  const endpoint = config.credentialsEndpoint
    ? await startEndpoint(ctx, served.current, now).catch(async (err: unknown) => {
        w.close();
        await server?.close();
        throw err;
      })
    : undefined;

  let lastToken = await w.tokens.peek();
  const watchFailed = (err: unknown) =>
    logger.warn(
      { event: 'token.watch_failed', message: err instanceof Error ? err.message : String(err) },
      'token watch failed',
    );
  const watcher = await watchTokenDirectory(
    config.tokenFile,
    () => {
      void w.tokens.peek().then((t) => {
        if (!t || t.fingerprint === lastToken?.fingerprint) return;
        lastToken = t;
        metrics.observeTokenRotation();
        logger.info(
          {
            event: 'token.rotated',
            issuer: t.issuer,
            subject: t.subject,
            issued_at: t.issuedAtMs === undefined ? undefined : new Date(t.issuedAtMs).toISOString(),
            expires_at: new Date(t.expiresAtMs).toISOString(),
          },
          'token rotated',
        );
        // A loop that is failing (often on an expired or missing token) should try the new one at once.
        // So should one whose lease ended with the old token's exp (re-sending it gets no longer lease).
        if (w.loop.failures > 0 || w.loop.awaitingNewToken) w.loop.refreshNow();
      });
    },
    watchFailed,
  ).catch((err: unknown) => {
    watchFailed(err);
    return undefined;
  });

  const d = describeConfig(config);
  logger.info(
    {
      event: 'sidecar.started',
      tenant: config.tenant,
      bucket: config.bucket,
      prefix: config.prefix,
      actions: config.actions,
      backend: config.backend,
      ttl_seconds: config.ttlSeconds,
      flex_auth_url: d.STS_SIDECAR_FLEX_AUTH_URL,
      sts_endpoint: d.STS_SIDECAR_STS_ENDPOINT,
      identity_exchange: config.identityExchange,
      idp_token_url: d.STS_SIDECAR_IDP_TOKEN_URL,
      sink: config.sink,
      // The Secret sink writes no files: its namespace/name instead of a directory nobody reads.
      ...(w.secretTarget === undefined ? { output_dir: config.outputDir } : { secret: w.secretTarget }),
      listen: server ? `${config.listen?.host}:${server.port}` : 'off',
      credentials_endpoint:
        endpoint && config.credentialsEndpoint
          ? formatEndpointAddress({ ...config.credentialsEndpoint, port: endpoint.port })
          : 'off',
      notify: notifyModule?.notifyChannels(config) ?? [],
    },
    'sidecar started',
  );

  const done = (async () => {
    try {
      await w.loop.run(stop.signal);
    } finally {
      tracker.stopped(now());
      signal.removeEventListener('abort', stopAll);
      await Promise.allSettled([watcher?.close(), server?.close(), endpoint?.close()]);
      if (config.wipeOnExit) {
        // Bounded: a hung API server (Secret sink) must not hold the pod past its grace period.
        await w.loop
          .wipe(AbortSignal.timeout(2 * config.requestTimeoutSeconds * 1000))
          .catch((err: unknown) =>
            logger.error(
              { event: 'sidecar.wipe_failed', message: (err as Error).message },
              'wipe on exit failed',
            ),
          );
      }
      w.close();
      // After the wipe, so its lease.revoked is still sent; bounded, so SIGTERM never hangs on it.
      await notifier?.close(NOTIFY_DRAIN_MS);
      logger.info({ event: 'sidecar.stopped', wiped: config.wipeOnExit }, 'sidecar stopped');
    }
  })();

  return {
    done,
    port: server?.port,
    credentialsPort: endpoint?.port,
    refreshNow: () => w.loop.refreshNow(),
  };
}

/** The credentials endpoint and its caller token; loaded only when configured (esbuild inlines it). */
async function startEndpoint(
  ctx: AppContext,
  current: (nowMs: number) => CredentialSet | undefined,
  now: () => number,
) {
  const { config, logger } = ctx;
  const address = config.credentialsEndpoint!;
  const [{ startCredentialsEndpoint }, { loadOrCreateEndpointToken, endpointTokenReloader }] =
    await Promise.all([import('./http/credentials-endpoint.ts'), import('./adapters/endpoint-token.ts')]);
  const token = await loadOrCreateEndpointToken(config.credentialsEndpointTokenFile!, config.fileMode);
  return startCredentialsEndpoint({
    host: address.host,
    port: address.port,
    token,
    reloadToken: endpointTokenReloader(config.credentialsEndpointTokenFile!),
    current,
    now,
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
}

function noKill(): void {
  throw new Error('signals are not available here');
}
