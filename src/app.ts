import type { Config } from './config/schema.ts';
import { describeConfig, formatEndpointAddress } from './config/load.ts';
import { toCredentialProcess } from './domain/credentials.ts';
import { describeHealth, isLive, isReady, type HealthState } from './domain/health.ts';
import type { SidecarMetrics } from './http/metrics.ts';
import type { HealthView } from './http/server.ts';
import { systemClock } from './adapters/system-clock.ts';
import type { LeaseReporter } from './lease-events.ts';
import type { Logger } from './logger.ts';
import { credentialsEndpointPart } from './parts/credentials-endpoint-part.ts';
import { healthServerPart } from './parts/health-server-part.ts';
import { createLeaseClients, createSink, leaseSettings } from './parts/lease-clients.ts';
import { createLeaseLoop, leaseLoopPart } from './parts/lease-loop-part.ts';
import { notifierPart } from './parts/notifier-part.ts';
import { interrupted, startParts, subscribersOf, type Part } from './parts/run-group.ts';
import { tokenWatcherPart } from './parts/token-watcher-part.ts';
import { createServedCredentials } from './subscribers/credentials.ts';
import { createHealthTracker } from './subscribers/health.ts';
import { createHeapCollector } from './subscribers/heap.ts';
import { logSubscriber } from './subscribers/log.ts';
import { metricsSubscriber } from './subscribers/metrics.ts';

/** Liveness grace: a wake-up may be late by GC pauses or a busy node; minutes late means stuck. */
const LIVENESS_GRACE_MS = 60_000;

/** What the composition root needs from the outside world; main.ts provides it. */
export interface AppContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly readTextFile: (path: string) => string;
  readonly random?: () => number;
  /** Sends a signal to a process (the PID-file notification); main.ts passes process.kill. */
  readonly kill?: (pid: number, signal: NodeJS.Signals) => void;
}

/** The one-shot commands' loop: the clients and the sink from the configuration, closed by `close`. */
function wire(ctx: AppContext) {
  const clients = createLeaseClients(ctx);
  const loop = createLeaseLoop({
    settings: leaseSettings(ctx.config, clients.identity !== undefined),
    sink: createSink(ctx).sink,
    clients,
    report: logSubscriber(ctx.logger),
    random: ctx.random ?? Math.random,
  });
  return { loop, close: () => void clients.close?.() };
}

/** `once`: write one set and return; throws the attempt's error. */
export async function runOnce(ctx: AppContext, signal: AbortSignal): Promise<void> {
  const w = wire(ctx);
  try {
    await w.loop.attemptOnce(signal, { write: true });
  } finally {
    w.close();
  }
}

/** `credential-process`: one exchange, nothing written; returns the credential_process JSON. */
export async function runCredentialProcess(ctx: AppContext, signal: AbortSignal): Promise<string> {
  const w = wire(ctx);
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

/**
 * `run`: the daemon's parts (see daemonParts) started in order; they run until `signal` aborts or one
 * of them ends, then close in reverse order.
 */
export async function startDaemon(ctx: AppContext, signal: AbortSignal): Promise<Daemon> {
  const { logger } = ctx;
  const daemon = await daemonParts(ctx);
  const group = await startParts(daemon.parts, signal, (part, err) =>
    logger.error(
      { event: 'sidecar.close_failed', part, message: err instanceof Error ? err.message : String(err) },
      'part failed to close',
    ),
  );
  logStarted(ctx, daemon);
  const done = group.done.finally(() =>
    logger.info({ event: 'sidecar.stopped', wiped: ctx.config.wipeOnExit }, 'sidecar stopped'),
  );
  return {
    done,
    port: daemon.server?.port,
    credentialsPort: daemon.endpoint?.port,
    refreshNow: () => {
      for (const loop of daemon.loops) loop.refreshNow();
    },
  };
}

type DaemonParts = Awaited<ReturnType<typeof daemonParts>>;

/** The daemon as a list of parts, built once from the configuration; the list's order is the start order. */
async function daemonParts(ctx: AppContext) {
  const { config, logger } = ctx;
  const now = systemClock.now;
  const marginMs = config.readyMarginSeconds * 1000;
  const tracker = createHealthTracker(now);
  // Loaded only here: once and credential-process never pay for prom-client.
  const { createMetrics } = await import('./http/metrics.ts');
  const metrics = createMetrics({ now, isReady: () => isReady(tracker.state(), now(), marginMs) });
  const served = createServedCredentials();
  const notifier = await notifierPart(config, logger, ctx.kill ?? noKill);
  const clients = createLeaseClients(ctx);
  const sink = createSink(ctx);
  let report: LeaseReporter = () => undefined;
  // One part per lease, over the shared clients.
  const leases = [
    leaseLoopPart({
      name: 'lease',
      settings: leaseSettings(config, clients.identity !== undefined),
      sink: served.wrap(sink.sink),
      clients,
      report: (event) => report(event),
      random: ctx.random ?? Math.random,
      wipeOnExitMs: config.wipeOnExit ? 2 * config.requestTimeoutSeconds * 1000 : undefined,
      logger,
    }),
  ];
  const loops = leases.map((lease) => lease.loop);
  const server = config.listen
    ? healthServerPart(config.listen, healthView(tracker.state, metrics, now, marginMs))
    : undefined;
  const endpoint = config.credentialsEndpoint
    ? credentialsEndpointPart({ config, logger, current: served.current, now })
    : undefined;
  const watcher = tokenWatcherPart({
    tokenFile: config.tokenFile,
    tokens: clients.tokens,
    loops,
    observeRotation: () => metrics.observeTokenRotation(),
    logger,
  });
  const parts: Part[] = [
    // First: a deny clears the served set whatever the subscribers after it do.
    { name: 'served-credentials', subscriber: served.subscriber },
    {
      name: 'health',
      subscriber: tracker.subscriber,
      run: (i) => interrupted(i).then(() => tracker.stopped(now())),
    },
    { name: 'metrics', subscriber: metricsSubscriber(metrics) },
    { name: 'log', subscriber: logSubscriber(logger) },
    // Before the loop, so it closes after the loop's wipe: the wipe's lease.revoked is still sent.
    ...(notifier ? [notifier] : []),
    { name: 'heap', subscriber: createHeapCollector() },
    // Before the loop, so the wipe on exit still has them.
    clients,
    ...leases,
    ...(server ? [server] : []),
    ...(endpoint ? [endpoint] : []),
    watcher,
  ];
  report = subscribersOf(parts, subscriberFailed(logger));
  return { parts, loops, server, endpoint, secretTarget: sink.target, notifier };
}

/** What /healthz, /readyz and /metrics answer, read from the health state and the metrics registry. */
function healthView(
  health: () => HealthState,
  metrics: SidecarMetrics,
  now: () => number,
  marginMs: number,
): HealthView {
  return {
    live: () => {
      const live = isLive(health(), now(), LIVENESS_GRACE_MS);
      return { ok: live, body: { live } };
    },
    ready: () => ({
      ok: isReady(health(), now(), marginMs),
      body: describeHealth(health(), now(), marginMs),
    }),
    metrics: async () => ({
      contentType: metrics.registry.contentType,
      body: await metrics.registry.metrics(),
    }),
  };
}

/** Logs a failed subscriber once: a broken one would otherwise log on every event. */
function subscriberFailed(logger: Logger): (err: unknown, index: number) => void {
  const failed = new Set<number>();
  return (err, index) => {
    if (failed.has(index)) return;
    failed.add(index);
    logger.error(
      { event: 'subscriber.failed', subscriber: index, error: err instanceof Error ? err.name : 'error' },
      'lease event subscriber failed',
    );
  };
}

function logStarted({ config, logger }: AppContext, daemon: DaemonParts): void {
  const d = describeConfig(config);
  const { server, endpoint } = daemon;
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
      ...(daemon.secretTarget === undefined
        ? { output_dir: config.outputDir }
        : { secret: daemon.secretTarget }),
      listen: server?.port !== undefined ? `${config.listen?.host}:${server.port}` : 'off',
      credentials_endpoint:
        endpoint?.port !== undefined && config.credentialsEndpoint
          ? formatEndpointAddress({ ...config.credentialsEndpoint, port: endpoint.port })
          : 'off',
      notify: daemon.notifier?.channels ?? [],
    },
    'sidecar started',
  );
}

function noKill(): void {
  throw new Error('signals are not available here');
}
