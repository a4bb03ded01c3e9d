import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { NotifySignal } from '../config/delivery.ts';
import { publicFields, type LeaseEvent, type LeaseSubscriber } from '../lease-events.ts';
import type { Logger } from '../logger.ts';

/** The events apps are told about: a new set on disk, or the set gone. */
const NOTIFIED = new Set<LeaseEvent['event']>([
  'lease.acquired',
  'lease.renewed',
  'lease.expired',
  'lease.revoked',
]);
/** Output of the notify command is drained, never logged, and not kept beyond this. */
const MAX_COMMAND_OUTPUT_BYTES = 64 * 1024;
const MAX_PID_FILE_BYTES = 64;

export type NotifyChannel = 'signal' | 'url' | 'command';

export interface NotifierOptions {
  readonly signal?: { readonly name: NotifySignal; readonly pidFile: string };
  readonly url?: string;
  readonly command?: readonly string[];
  /** Deadline of each notification. */
  readonly timeoutMs: number;
  readonly logger: Logger;
  /**
   * Sends a signal (process.kill, provided by main.ts): the PID-file notification, and SIGKILL to a
   * command's process group (negative pid) at its deadline or at shutdown.
   */
  readonly kill: (pid: number, signal: NodeJS.Signals) => void;
}

export interface Notifier {
  readonly subscriber: LeaseSubscriber;
  /** Resolves when every notification in flight has finished (tests). */
  idle(): Promise<void>;
  /**
   * Shutdown: lets notifications in flight (the removal at exit among them) finish for up to `drainMs`,
   * then aborts what is left (a POST is aborted, a command's process group killed) and waits at most
   * `drainMs` more. Nothing is sent afterwards.
   */
  close(drainMs: number): Promise<void>;
}

/** The channels configured, in the order they are sent; also what `sidecar.started` lists. */
export function notifyChannels(c: {
  readonly notifySignal?: unknown;
  readonly notifyUrl?: unknown;
  readonly notifyCommand?: unknown;
}): NotifyChannel[] {
  return [
    ...(c.notifySignal ? (['signal'] as const) : []),
    ...(c.notifyUrl ? (['url'] as const) : []),
    ...(c.notifyCommand ? (['command'] as const) : []),
  ];
}

/**
 * Serialises one channel; while one notification runs, only the newest waiting event of each lease is kept
 * (a second lease's news must not be dropped for the first one's).
 */
function latestOnly(run: (event: LeaseEvent) => Promise<void>) {
  let running: Promise<void> | undefined;
  const pending = new Map<string | undefined, LeaseEvent>();
  const drain = async (): Promise<void> => {
    for (let next = pending.entries().next(); !next.done; next = pending.entries().next()) {
      const [lease, e] = next.value;
      pending.delete(lease);
      await run(e);
    }
    running = undefined;
  };
  return {
    push(event: LeaseEvent) {
      const lease = event.lease;
      // Re-inserted at the end: a lease's newer event waits its turn behind the other leases' older ones.
      pending.delete(lease);
      pending.set(lease, event);
      running ??= drain();
    },
    idle: () => running ?? Promise.resolve(),
  };
}

const payload = (event: LeaseEvent): string => JSON.stringify(publicFields(event));

/**
 * A failed notification as logged. Never a foreign error's message: fetch's quotes the URL, which may
 * carry a secret in its query; only a category, an HTTP status or an error code.
 */
class NotifyFailure extends Error {
  readonly reason: string;
  readonly details: { http_status?: number; error_code?: string };
  constructor(reason: string, details: { http_status?: number; error_code?: string } = {}) {
    super(reason);
    this.reason = reason;
    this.details = details;
  }
}

async function readPid(file: string): Promise<number> {
  let text: string;
  try {
    text = (await readFile(file, 'utf8')).slice(0, MAX_PID_FILE_BYTES).trim();
  } catch (err) {
    throw new NotifyFailure('pid_file_unreadable', { error_code: errnoCode(err) });
  }
  if (!/^\d{1,10}$/.test(text) || Number(text) <= 1) throw new NotifyFailure('pid_file_invalid');
  return Number(text);
}

function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

async function post(url: string, body: string, timeoutMs: number, stop: AbortSignal): Promise<void> {
  const deadline = AbortSignal.timeout(timeoutMs);
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      redirect: 'error',
      signal: AbortSignal.any([stop, deadline]),
    });
    await res.body?.cancel();
  } catch (err) {
    if (deadline.aborted) throw new NotifyFailure('timeout');
    if (stop.aborted) throw new NotifyFailure('aborted');
    // undici puts the system error (ECONNREFUSED, ENOTFOUND, ...) in `cause`.
    throw new NotifyFailure('request_failed', {
      error_code: errnoCode((err as { cause?: unknown }).cause) ?? (err as Error).name,
    });
  }
  if (!res.ok) throw new NotifyFailure('http_status', { http_status: res.status });
}

/** Kills the command's whole process group: a shell script's children die with it. */
function killGroup(kill: NotifierOptions['kill'], pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: the group is gone already.
  }
}

/**
 * Runs the command in its own process group. Finishes on 'exit', not 'close': a background process
 * the command leaves behind may hold stdout/stderr open forever. The output is drained, never kept.
 */
function run(
  argv: readonly string[],
  input: string,
  o: Pick<NotifierOptions, 'timeoutMs' | 'kill'>,
  stop: AbortSignal,
): Promise<void> {
  const { timeoutMs } = o;
  return new Promise((resolve, reject) => {
    if (stop.aborted) return reject(new NotifyFailure('aborted'));
    const child = spawn(argv[0]!, argv.slice(1), {
      shell: false,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    let killedFor: string | undefined;
    const kill = (why: string) => {
      killedFor ??= why;
      killGroup(o.kill, child.pid);
    };
    const timer = setTimeout(() => kill('timeout'), timeoutMs);
    const onStop = () => kill('aborted');
    stop.addEventListener('abort', onStop, { once: true });
    let seen = 0;
    const drain = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > MAX_COMMAND_OUTPUT_BYTES) kill('output_over_limit');
    };
    child.stdout.on('data', drain);
    child.stderr.on('data', drain);
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
    const finish = () => {
      clearTimeout(timer);
      stop.removeEventListener('abort', onStop);
      child.stdout.destroy();
      child.stderr.destroy();
    };
    child.once('error', (err) => {
      finish();
      reject(new NotifyFailure('spawn_failed', { error_code: errnoCode(err) }));
    });
    child.once('exit', (code, signal) => {
      finish();
      if (killedFor) reject(new NotifyFailure(killedFor));
      else if (code === 0) resolve();
      else reject(new NotifyFailure(signal ? `killed_by_${signal}` : `exit_code_${code}`));
    });
  });
}

/**
 * Tells the app about every new set and every removal, through each configured channel. Runs beside
 * the loop: a slow or failing notification never delays or fails a lease; it is logged as notify.failed.
 */
export function createNotifier(o: NotifierOptions): Notifier {
  const kill = o.kill;
  const stopper = new AbortController();
  const stop = stopper.signal;
  const channels: [NotifyChannel, (e: LeaseEvent) => Promise<void>][] = [];
  if (o.signal) {
    const { name, pidFile } = o.signal;
    channels.push([
      'signal',
      async () => {
        const pid = await readPid(pidFile);
        try {
          kill(pid, name);
        } catch (err) {
          throw new NotifyFailure('kill_failed', { error_code: errnoCode(err) });
        }
      },
    ]);
  }
  if (o.url) {
    const url = o.url;
    channels.push(['url', (e) => post(url, payload(e), o.timeoutMs, stop)]);
  }
  if (o.command) {
    const argv = o.command;
    channels.push(['command', (e) => run(argv, payload(e) + '\n', o, stop)]);
  }
  const queues = channels.map(([channel, send]) =>
    latestOnly(async (e) => {
      if (stop.aborted) return;
      try {
        await send(e);
        o.logger.debug({ event: 'notify.sent', channel, lease_event: e.event }, 'notification sent');
      } catch (err) {
        const f = err instanceof NotifyFailure ? err : new NotifyFailure('unexpected');
        o.logger.warn(
          { event: 'notify.failed', channel, lease_event: e.event, reason: f.reason, ...f.details },
          'notification failed',
        );
      }
    }),
  );
  const idle = async () => {
    await Promise.all(queues.map((q) => q.idle()));
  };
  const within = async (ms: number) => {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([idle(), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  };
  return {
    subscriber: (event) => {
      if (stop.aborted || !NOTIFIED.has(event.event)) return;
      for (const q of queues) q.push(event);
    },
    idle,
    close: async (drainMs) => {
      await within(drainMs);
      stopper.abort();
      await within(drainMs);
    },
  };
}
