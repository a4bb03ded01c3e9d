import http from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import { STSClient } from '@aws-sdk/client-sts';
import type { Config } from './config/schema.ts';
import { describeConfig } from './config/load.ts';
import { toCredentialProcess } from './domain/credentials.ts';
import {
  applyHealthEvent,
  describeHealth,
  initialHealth,
  isLive,
  isReady,
  type HealthState,
} from './domain/health.ts';
import { CredentialDirectory } from './adapters/credential-dir.ts';
import { FlexAuthClient } from './adapters/flex-auth.ts';
import { createHttpTransport } from './adapters/http-transport.ts';
import { StsCredentialIssuer } from './adapters/sts.ts';
import { systemClock } from './adapters/system-clock.ts';
import { FileTokenSource, watchTokenDirectory } from './adapters/token-file.ts';
import type { LeaseEvent, LeaseReporter } from './lease-events.ts';
import { LeaseLoop } from './lease-loop.ts';
import { createHeapCollector } from './heap-collector.ts';
import type { Logger } from './logger.ts';
import { SidecarError } from './errors.ts';

/** flex-auth answers are a few hundred bytes; a cap stops a hostile or broken server from filling memory. */
const MAX_POLICY_RESPONSE_BYTES = 64 * 1024;

/** What the composition root needs from the outside world; main.ts provides it. */
export interface AppContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly readTextFile: (path: string) => string;
  readonly random?: () => number;
}

interface Wiring {
  readonly loop: LeaseLoop;
  readonly tokens: FileTokenSource;
  readonly sink: CredentialDirectory;
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

function wire(ctx: AppContext, report: LeaseReporter): Wiring {
  const c = ctx.config;
  const timeoutMs = c.requestTimeoutSeconds * 1000;
  const ca = trustedCas(ctx);
  const tokens = new FileTokenSource({ path: c.tokenFile, audience: c.tokenAudience, now: systemClock.now });
  const sink = new CredentialDirectory({ dir: c.outputDir, fileMode: c.fileMode });
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
      // write, with room to spare.
      attemptDeadlineMs: 3 * timeoutMs + 10_000,
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
      issuer: new StsCredentialIssuer({ client: stsClient, timeoutMs }),
      sink,
      clock: systemClock,
      random: ctx.random ?? Math.random,
      report,
    },
  );
  return { loop, tokens, sink, close: () => stsClient.destroy() };
}

const LOG_MESSAGES: Partial<Record<LeaseEvent['event'], [level: 'info' | 'warn', message: string]>> = {
  'lease.acquired': ['info', 'lease acquired'],
  'lease.renewed': ['info', 'lease renewed'],
  'lease.denied': ['warn', 'lease denied'],
  'lease.failed': ['warn', 'lease attempt failed'],
  'lease.expired': ['warn', 'lease expired'],
  'lease.revoked': ['warn', 'lease revoked'],
};

/** One log line per outcome; loop and call events only at trace level. */
function logEvent(logger: Logger, event: LeaseEvent): void {
  const entry = LOG_MESSAGES[event.event];
  if (!entry) {
    logger.trace(event, event.event);
    return;
  }
  const { expires_at_ms: _ms, ...fields } = event as LeaseEvent & { expires_at_ms?: number };
  logger[entry[0]](fields, entry[1]);
}

/** `once`: write one set and return; throws the attempt's error. */
export async function runOnce(ctx: AppContext, signal: AbortSignal): Promise<void> {
  const w = wire(ctx, (e) => logEvent(ctx.logger, e));
  try {
    await w.sink.prepare();
    await w.loop.acquire(signal);
  } finally {
    w.close();
  }
}

/** `credential-process`: one exchange, nothing written; returns the credential_process JSON. */
export async function runCredentialProcess(ctx: AppContext, signal: AbortSignal): Promise<string> {
  const w = wire(ctx, (e) => logEvent(ctx.logger, e));
  try {
    const exchange = await w.loop.exchange(signal);
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
  refreshNow(): void;
}

/** `run`: the lease loop, the health server and the token watcher until `signal` aborts. */
export async function startDaemon(ctx: AppContext, signal: AbortSignal): Promise<Daemon> {
  const { config, logger } = ctx;
  const now = systemClock.now;
  const marginMs = config.readyMarginSeconds * 1000;
  let health: HealthState = initialHealth(now());
  const stop = new AbortController();
  const stopAll = () => stop.abort();
  signal.addEventListener('abort', stopAll, { once: true });

  // Loaded only here: once and credential-process never pay for the HTTP server or prom-client.
  const [{ createMetrics }, { startHealthServer }] = await Promise.all([
    import('./http/metrics.ts'),
    import('./http/server.ts'),
  ]);
  const metrics = createMetrics({ now, isReady: () => isReady(health, now(), marginMs) });
  const collectHeap = createHeapCollector();

  const report: LeaseReporter = (event) => {
    switch (event.event) {
      case 'loop.attempt':
        health = applyHealthEvent(health, {
          type: 'attempt-started',
          atMs: event.at_ms,
          deadlineMs: event.deadline_ms,
        });
        break;
      case 'loop.sleep':
        health = applyHealthEvent(health, { type: 'sleeping', atMs: event.at_ms, untilMs: event.until_ms });
        break;
      case 'lease.acquired':
      case 'lease.renewed':
        health = applyHealthEvent(health, {
          type: 'lease-written',
          atMs: now(),
          expiresAtMs: event.expires_at_ms,
        });
        break;
      case 'lease.failed':
      case 'lease.denied':
        health = applyHealthEvent(health, { type: 'attempt-failed', atMs: now(), code: event.code });
        break;
      case 'lease.expired':
      case 'lease.revoked':
        health = applyHealthEvent(health, { type: 'lease-removed', atMs: now() });
        break;
      default:
        break;
    }
    metrics.observe(event);
    logEvent(logger, event);
    collectHeap(event);
  };

  const w = wire(ctx, report);
  // Liveness grace: a wake-up may be late by GC pauses or a busy node; minutes late means stuck.
  const graceMs = 60_000;
  const server = config.listen
    ? await startHealthServer({
        host: config.listen.host,
        port: config.listen.port,
        view: {
          live: () => ({
            ok: isLive(health, now(), graceMs),
            body: { live: isLive(health, now(), graceMs) },
          }),
          ready: () => ({
            ok: isReady(health, now(), marginMs),
            body: describeHealth(health, now(), marginMs),
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
        if (w.loop.failures > 0) w.loop.refreshNow();
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
      output_dir: config.outputDir,
      listen: server ? `${config.listen?.host}:${server.port}` : 'off',
    },
    'sidecar started',
  );

  const done = (async () => {
    try {
      await w.loop.run(stop.signal);
    } finally {
      health = applyHealthEvent(health, { type: 'stopped', atMs: now() });
      signal.removeEventListener('abort', stopAll);
      await Promise.allSettled([watcher?.close(), server?.close()]);
      if (config.wipeOnExit) {
        await w.loop
          .wipe()
          .catch((err: unknown) =>
            logger.error(
              { event: 'sidecar.wipe_failed', message: (err as Error).message },
              'wipe on exit failed',
            ),
          );
      }
      w.close();
      logger.info({ event: 'sidecar.stopped', wiped: config.wipeOnExit }, 'sidecar stopped');
    }
  })();

  return { done, port: server?.port, refreshNow: () => w.loop.refreshNow() };
}
