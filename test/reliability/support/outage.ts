/**
 * One outage scenario against the real sidecar process: a short lease (the stand-in hands out 6 s), a
 * service taken away right after the first exchange for longer than the whole lease, then given back.
 * Everything is measured from outside: log lines, /readyz, the visible files, and request counts.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startLocalStack, defaultPolicy } from '../../stack/local-stack.ts';
import { startSidecar } from '../../support/sidecar-process.ts';
import {
  eventsOf,
  healthPort,
  httpGet,
  nextEvent,
  poller,
  recordIssuedSecrets,
  sleep,
  startTcpProxy,
} from './harness.ts';

export type OutageService = 'flex-auth' | 'sts';
export type OutageKind = 'unreachable' | 'slow' | '5xx';

export const OUTAGE_SETTINGS = {
  leaseSeconds: 6,
  readyMarginSeconds: 2,
  backoffInitialSeconds: 0.2,
  backoffMaxSeconds: 1,
  requestTimeoutSeconds: 1,
} as const;

export interface OutageResult {
  readonly service: OutageService;
  readonly kind: OutageKind;
  readonly requestTimeoutSeconds: number;
  readonly codes: string[];
  /** Attempts that failed between the outage start and the recovery. */
  readonly failedAttempts: number;
  /** Seconds from the first failed attempt to the service's return. */
  readonly failingSeconds: number;
  /** What full-jitter backoff predicts for that window (mean), and the bound the test enforces. */
  readonly expectedAttempts: number;
  readonly maxAttempts: number;
  readonly minAttempts: number;
  readonly flexAuthRequests: number;
  readonly stsRequests: number;
  readonly successesDuringOutage: number;
  /** File samples before expiry that did not show the acquired set. */
  readonly setLostEarly: number;
  readonly fileSamplesBeforeExpiry: number;
  /** File samples after lease.expired (before the service returned) that still found a set. */
  readonly setAfterExpiry: number;
  /** Estimated expiry (ms) minus the time /readyz first answered 503. Should be about the margin. */
  readonly readyDroppedBeforeExpiryMs: number;
  /** /readyz 503 answers seen while more than the margin was left (should be 0). */
  readonly notReadyEarly: number;
  /** lease.expired log time minus estimated expiry. */
  readonly removalLateMs: number;
  /** Service back -> lease.acquired log line. */
  readonly recoveryMs: number;
  readonly keptUntilLogged: boolean;
}

/** Mean number of attempts full-jitter backoff makes in `seconds` (caps 0.2, 0.4, 0.8, 1, 1, ...). */
export function expectedAttempts(
  seconds: number,
  attemptSeconds: number,
  initial: number,
  max: number,
): number {
  let t = 0;
  let n = 0;
  while (t < seconds) {
    n++;
    t += attemptSeconds + Math.min(max, initial * 2 ** (n - 1)) / 2;
  }
  return n;
}

export async function runOutage(
  service: OutageService,
  kind: OutageKind,
  overrides: { requestTimeoutSeconds?: number } = {},
): Promise<OutageResult> {
  const s = { ...OUTAGE_SETTINGS, ...overrides };
  const stack = await startLocalStack({
    sts: 'stand-in',
    leaseSeconds: s.leaseSeconds,
    minDurationSeconds: 1,
  });
  const flexUrl = new URL(stack.decision.url);
  const stsUrl = new URL(stack.standIn!.endpoint);
  const flexProxy = await startTcpProxy('127.0.0.1', Number(flexUrl.port));
  const stsProxy = await startTcpProxy('127.0.0.1', Number(stsUrl.port));
  const env = {
    ...stack.env,
    STS_SIDECAR_FLEX_AUTH_URL: `http://127.0.0.1:${flexProxy.port}${flexUrl.pathname}`,
    STS_SIDECAR_STS_ENDPOINT: `http://127.0.0.1:${stsProxy.port}`,
    STS_SIDECAR_TTL_SECONDS: '60',
    STS_SIDECAR_STS_MIN_DURATION_SECONDS: '1',
    STS_SIDECAR_READY_MARGIN_SECONDS: String(s.readyMarginSeconds),
    STS_SIDECAR_BACKOFF_INITIAL_SECONDS: String(s.backoffInitialSeconds),
    STS_SIDECAR_BACKOFF_MAX_SECONDS: String(s.backoffMaxSeconds),
    STS_SIDECAR_REQUEST_TIMEOUT_SECONDS: String(s.requestTimeoutSeconds),
  };
  const fault = {
    'flex-auth': {
      unreachable: { start: () => flexProxy.down(), stop: () => flexProxy.up() },
      slow: {
        start: () =>
          stack.writePolicy({
            ...defaultPolicy(stack.tenant, stack.bucket, stack.prefix),
            fault: { kind: 'delay', ms: s.requestTimeoutSeconds * 1000 + 2000 },
          }),
        stop: () => stack.writePolicy(defaultPolicy(stack.tenant, stack.bucket, stack.prefix)),
      },
      '5xx': {
        start: () =>
          stack.writePolicy({
            ...defaultPolicy(stack.tenant, stack.bucket, stack.prefix),
            fault: { kind: 'status', status: 503 },
          }),
        stop: () => stack.writePolicy(defaultPolicy(stack.tenant, stack.bucket, stack.prefix)),
      },
    },
    sts: {
      unreachable: { start: () => stsProxy.down(), stop: () => stsProxy.up() },
      slow: {
        start: async () =>
          stack.standIn!.setFault({ kind: 'delay', ms: s.requestTimeoutSeconds * 1000 + 2000 }),
        stop: async () => stack.standIn!.setFault(undefined),
      },
      '5xx': {
        start: async () => stack.standIn!.setFault({ kind: 'status', status: 503 }),
        stop: async () => stack.standIn!.setFault(undefined),
      },
    },
  }[service][kind];

  const p = startSidecar(env, ['run'], { label: `outage-${service}-${kind}` });
  try {
    const port = await healthPort(p);
    const a0 = await p.waitForEvent('lease.acquired', 15_000);
    const key = String(a0.access_key_id);
    // The Expiration the stand-in returned for this key, to the millisecond: the log line's own time comes
    // later by however long a loaded machine took to get there, which would count samples after the
    // removal as "before expiry".
    const issuedExpiry = stack.standIn!.calls.find((c) => c.accessKeyId === key)?.expiresAtMs;
    const expEst = issuedExpiry ?? Date.parse(String(a0.time)) + s.leaseSeconds * 1000;

    const from = p.lines.length;
    const flex0 = stack.decision.requestCount;
    const sts0 = stack.standIn!.calls.length;
    await fault.start();
    const ready = poller(50, () =>
      httpGet(port, '/readyz').then(
        (r) => r.status,
        () => 0,
      ),
    );
    const files = poller(50, () =>
      readFile(path.join(stack.outputDir, 'access-key'), 'utf8').catch(() => null),
    );

    const expired = await nextEvent(p, ['lease.expired'], from, 20_000);
    await sleep(1500);
    const flex1 = stack.decision.requestCount;
    const sts1 = stack.standIn!.calls.length;
    const restoredAt = Date.now();
    const to = p.lines.length;
    await fault.stop();
    const recovered = await nextEvent(p, ['lease.acquired', 'lease.renewed'], to, 15_000);
    await sleep(200);
    await ready.stop();
    await files.stop();

    const failed = eventsOf(p, 'lease.failed', from, recovered.index);
    const firstFailAt = Date.parse(String(failed[0]?.time ?? new Date().toISOString()));
    const failingSeconds = (restoredAt - firstFailAt) / 1000;
    const attemptSeconds = kind === 'slow' ? s.requestTimeoutSeconds : 0.01;
    const expected = expectedAttempts(
      failingSeconds,
      attemptSeconds,
      s.backoffInitialSeconds,
      s.backoffMaxSeconds,
    );
    const expiredAt = Date.parse(String(expired.line.time));
    const marginAt = expEst - s.readyMarginSeconds * 1000;
    const first503 = ready.samples.find((x) => x.t >= from && x.v === 503);
    const before = files.samples.filter((x) => x.t < expEst - 150);
    return {
      service,
      kind,
      requestTimeoutSeconds: s.requestTimeoutSeconds,
      codes: [...new Set(failed.map((l) => String(l.code)))],
      failedAttempts: failed.length,
      failingSeconds: Math.round(failingSeconds * 10) / 10,
      expectedAttempts: expected,
      maxAttempts: 2 * expected + 2,
      minAttempts: Math.max(1, Math.floor(failingSeconds / (s.backoffMaxSeconds + attemptSeconds + 0.3)) - 1),
      flexAuthRequests: flex1 - flex0,
      stsRequests: sts1 - sts0,
      successesDuringOutage: [
        ...eventsOf(p, 'lease.renewed', from, to),
        ...eventsOf(p, 'lease.acquired', from, to),
      ].length,
      setLostEarly: before.filter((x) => x.v !== key).length,
      fileSamplesBeforeExpiry: before.length,
      setAfterExpiry: files.samples
        .filter((x) => x.t > expiredAt + 150 && x.t < restoredAt)
        .filter((x) => x.v !== null).length,
      readyDroppedBeforeExpiryMs: first503 ? expEst - first503.t : Number.NaN,
      notReadyEarly: ready.samples.filter((x) => x.t < marginAt - 150 && x.v !== 200).length,
      removalLateMs: expiredAt - expEst,
      recoveryMs: Date.parse(String(recovered.line.time)) - restoredAt,
      keptUntilLogged: failed
        .filter((l) => Date.parse(String(l.time)) < expEst - 100)
        .every((l) => typeof l.set_kept_until === 'string'),
    };
  } finally {
    p.kill();
    await p.exited;
    recordIssuedSecrets(stack);
    await Promise.allSettled([flexProxy.close(), stsProxy.close()]);
    await stack.close();
  }
}
