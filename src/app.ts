import type { Config } from './config/schema.ts';
import { describeConfig, formatEndpointAddress } from './config/load.ts';
import { toCredentialProcess } from './domain/credentials.ts';
import { systemClock } from './adapters/system-clock.ts';
import { forLease, type LeaseReporter } from './lease-events.ts';
import type { LeaseSpec } from './config/schema.ts';
import { leaseStartDelayMs } from './domain/lease-start.ts';
import { SidecarError } from './errors.ts';
import { leaseFilesPart } from './parts/lease-files-part.ts';
import type { Logger } from './logger.ts';
import { credentialsEndpointPart } from './parts/credentials-endpoint-part.ts';
import { healthServerPart } from './parts/health-server-part.ts';
import { createLeaseClients, createSink, leaseSettings, type LeaseClients } from './parts/lease-clients.ts';
import { createLeaseLoop, leaseLoopPart, type LeaseLoopPart } from './parts/lease-loop-part.ts';
import { notifierPart } from './parts/notifier-part.ts';
import { interrupted, startParts, subscribersOf, type Part } from './parts/run-group.ts';
import { tokenWatcherPart } from './parts/token-watcher-part.ts';
import { createServedLeases, type ServedLeases } from './subscribers/credentials.ts';
import { createLeasesHealth, type LeasesHealth } from './subscribers/health.ts';
import type { SidecarMetrics } from './http/metrics.ts';
import type { HealthView } from './http/server.ts';
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

/** The one-shot commands' loops (one per lease): the shared clients and each lease's sink, closed by `close`. */
function wire(ctx: AppContext) {
  const clients = createLeaseClients(ctx);
  const loops = ctx.config.leases.map((lease) =>
    createLeaseLoop({
      settings: leaseSettings(ctx.config, lease, clients.identity !== undefined),
      sink: createSink(ctx, lease).sink,
      clients,
      report: forLease(lease.name, logSubscriber(ctx.logger)),
      random: ctx.random ?? Math.random,
    }),
  );
  return { loops, close: () => void clients.close?.() };
}

/** `once`: write one set per lease (in config order) and return; throws the first failed attempt's error. */
export async function runOnce(ctx: AppContext, signal: AbortSignal): Promise<void> {
  const w = wire(ctx);
  try {
    await leaseFilesPart(ctx.config)?.start?.();
    for (const loop of w.loops) await loop.attemptOnce(signal, { write: true });
  } finally {
    w.close();
  }
}

/** `credential-process`: one exchange, nothing written; returns the credential_process JSON. */
export async function runCredentialProcess(ctx: AppContext, signal: AbortSignal): Promise<string> {
  if (ctx.config.leases.length > 1 || ctx.config.leases[0]?.name !== undefined) {
    throw new SidecarError(
      'ERR_CONFIG',
      'credential-process prints one set: with named leases (STS_SIDECAR_CONFIG_FILE) use the profile file the daemon writes, or once',
    );
  }
  const w = wire(ctx);
  try {
    const exchange = await w.loops[0]!.attemptOnce(signal, { write: false });
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
      for (const lease of daemon.leases) lease.loop.refreshNow();
    },
  };
}

type DaemonParts = Awaited<ReturnType<typeof daemonParts>>;

/** The daemon as a list of parts, built once from the configuration; the list's order is the start order. */
async function daemonParts(ctx: AppContext) {
  const { config, logger } = ctx;
  const now = systemClock.now;
  const marginMs = config.readyMarginSeconds * 1000;
  const names = config.leases.map((l) => l.name);
  const named = names[0] !== undefined;
  const health = createLeasesHealth(now, names);
  // Loaded only here: once and credential-process never pay for prom-client.
  const { createMetrics } = await import('./http/metrics.ts');
  const metrics = createMetrics({
    now,
    isReady: (lease) => health.isLeaseReady(lease, now(), marginMs),
    ...(named ? { leases: names as string[] } : {}),
  });
  const served = createServedLeases(names);
  const notifier = await notifierPart(config, logger, ctx.kill ?? noKill);
  const clients = createLeaseClients(ctx);
  let report: LeaseReporter = () => undefined;
  const leases = leaseParts(ctx, clients, served, (event) => report(event));
  const server = config.listen
    ? healthServerPart(config.listen, healthView(health, metrics, now, marginMs))
    : undefined;
  const endpoint = config.credentialsEndpoint
    ? credentialsEndpointPart({
        config,
        logger,
        current: served.current,
        ...(named ? { leases: names as string[] } : {}),
        now,
      })
    : undefined;
  const watcher = tokenWatcherPart({
    tokenFile: config.tokenFile,
    tokens: clients.tokens,
    loops: leases.map((l) => l.loop),
    observeRotation: () => metrics.observeTokenRotation(),
    logger,
  });
  const files = leaseFilesPart(config);
  const parts: Part[] = [
    // First: a deny clears the served set whatever the subscribers after it do.
    { name: 'served-credentials', subscriber: served.subscriber },
    {
      name: 'health',
      subscriber: health.subscriber,
      run: (i) => interrupted(i).then(() => health.stopped(now())),
    },
    { name: 'metrics', subscriber: metricsSubscriber(metrics) },
    { name: 'log', subscriber: logSubscriber(logger) },
    // Before the loop, so it closes after the loop's wipe: the wipe's lease.revoked is still sent.
    ...(notifier ? [notifier] : []),
    { name: 'heap', subscriber: createHeapCollector() },
    // Before the loop, so the wipe on exit still has them.
    clients,
    // Before the loops: their first write needs the lease directories.
    ...(files ? [files] : []),
    ...leases,
    ...(server ? [server] : []),
    ...(endpoint ? [endpoint] : []),
    watcher,
  ];
  report = subscribersOf(parts, subscriberFailed(logger));
  return { parts, leases, server, endpoint, notifier };
}

/**
 * One lease-loop part per lease, sharing the clients: each its own settings, sink (wrapped so the endpoint
 * serves what it wrote), random draws and start slot; its events carry its name (named leases).
 */
function leaseParts(
  ctx: AppContext,
  clients: LeaseClients,
  served: ServedLeases,
  report: LeaseReporter,
): (LeaseLoopPart & { readonly target: string | undefined })[] {
  const { config, logger } = ctx;
  const random = ctx.random ?? Math.random;
  return config.leases.map((lease, i) => {
    const sink = createSink(ctx, lease);
    const part = leaseLoopPart({
      name: lease.name === undefined ? 'lease' : `lease ${lease.name}`,
      settings: leaseSettings(config, lease, clients.identity !== undefined),
      sink: served.wrap(lease.name, sink.sink),
      clients,
      report: forLease(lease.name, report),
      random,
      // The first lease (and the only one of an environment-only configuration) starts at once.
      ...(i > 0 ? { startDelayMs: leaseStartDelayMs(i, random()) } : {}),
      wipeOnExitMs: config.wipeOnExit ? 2 * config.requestTimeoutSeconds * 1000 : undefined,
      logger,
    });
    return Object.assign(part, { target: sink.target });
  });
}

/** What /healthz, /readyz and /metrics answer, read from every lease's health and the metrics registry. */
function healthView(
  health: LeasesHealth,
  metrics: SidecarMetrics,
  now: () => number,
  marginMs: number,
): HealthView {
  return {
    live: () => {
      const live = health.isLive(now(), LIVENESS_GRACE_MS);
      return { ok: live, body: { live } };
    },
    ready: () => ({ ok: health.isReady(now(), marginMs), body: health.readyBody(now(), marginMs) }),
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

/** What a lease asks for, as sidecar.started shows it. */
function grantFields(l: LeaseSpec) {
  return { bucket: l.bucket, prefix: l.prefix, actions: l.actions };
}

/** The Secret sink writes no files: its namespace/name instead of a directory nobody reads. */
function where(outputDir: string, secretTarget: string | undefined) {
  return secretTarget === undefined ? { output_dir: outputDir } : { secret: secretTarget };
}

function logStarted({ config, logger }: AppContext, daemon: DaemonParts): void {
  const d = describeConfig(config);
  const named = config.leases[0]?.name !== undefined;
  const { server, endpoint } = daemon;
  logger.info(
    {
      event: 'sidecar.started',
      tenant: config.tenant,
      ...(named ? {} : grantFields(config.leases[0]!)),
      backend: config.backend,
      ...(named ? {} : { ttl_seconds: config.ttlSeconds }),
      flex_auth_url: d.STS_SIDECAR_FLEX_AUTH_URL,
      sts_endpoint: d.STS_SIDECAR_STS_ENDPOINT,
      identity_exchange: config.identityExchange,
      idp_token_url: d.STS_SIDECAR_IDP_TOKEN_URL,
      sink: config.sink,
      // The Secret sink writes no files: its namespace/name instead of a directory nobody reads.
      ...(named ? {} : where(config.outputDir, daemon.leases[0]!.target)),
      ...(named
        ? {
            leases: config.leases.map((l, i) => ({
              name: l.name,
              ...grantFields(l),
              ttl_seconds: l.ttlSeconds,
              ...where(l.outputDir, daemon.leases[i]!.target),
            })),
          }
        : {}),
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
