import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { NotifySignal } from '../config/delivery.ts';
import type { LeaseEvent, LeaseSubscriber } from '../lease-events.ts';
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
  /** Aborts everything in flight (SIGTERM). */
  readonly stop: AbortSignal;
  /** Sends a signal (process.kill, provided by main.ts; tests watch it). */
  readonly kill: (pid: number, signal: NotifySignal) => void;
}

export interface Notifier {
  readonly subscriber: LeaseSubscriber;
  /** Resolves when every notification in flight has finished (tests, shutdown). */
  idle(): Promise<void>;
}

/** Serialises one channel; while one notification runs, only the newest waiting event is kept. */
function latestOnly(run: (event: LeaseEvent) => Promise<void>) {
  let running: Promise<void> | undefined;
  let pending: LeaseEvent | undefined;
  const drain = async (): Promise<void> => {
    while (pending) {
      const e = pending;
      pending = undefined;
      await run(e);
    }
    running = undefined;
  };
  return {
    push(event: LeaseEvent) {
      pending = event;
      running ??= drain();
    },
    idle: () => running ?? Promise.resolve(),
  };
}

/** The event as apps see it: lease.* fields, no secrets (lease events never carry any). */
function payload(event: LeaseEvent): string {
  const { expires_at_ms: _ms, ...fields } = event as LeaseEvent & { expires_at_ms?: number };
  return JSON.stringify(fields);
}

async function readPid(file: string): Promise<number> {
  const text = (await readFile(file, 'utf8')).slice(0, MAX_PID_FILE_BYTES).trim();
  if (!/^\d{1,10}$/.test(text) || Number(text) <= 1) throw new Error(`${file} holds no process id`);
  return Number(text);
}

async function post(url: string, body: string, timeoutMs: number, stop: AbortSignal): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    redirect: 'error',
    signal: AbortSignal.any([stop, AbortSignal.timeout(timeoutMs)]),
  });
  await res.body?.cancel();
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
}

function run(argv: readonly string[], input: string, timeoutMs: number, stop: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      shell: false,
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      signal: stop,
    });
    let seen = 0;
    const drain = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > MAX_COMMAND_OUTPUT_BYTES) child.kill('SIGKILL');
    };
    child.stdout.on('data', drain);
    child.stderr.on('data', drain);
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
    child.once('error', (err) => reject(err));
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else if (seen > MAX_COMMAND_OUTPUT_BYTES) reject(new Error('output over 64 KiB; killed'));
      else reject(new Error(signal ? `killed by ${signal} (deadline ${timeoutMs} ms)` : `exit code ${code}`));
    });
  });
}

/**
 * Tells the app about every new set and every removal, through each configured channel. Runs beside
 * the loop: a slow or failing notification never delays or fails a lease; it is logged as notify.failed.
 */
export function createNotifier(o: NotifierOptions): Notifier {
  const kill = o.kill;
  const channels: [NotifyChannel, (e: LeaseEvent) => Promise<void>][] = [];
  if (o.signal) {
    const { name, pidFile } = o.signal;
    channels.push(['signal', async () => kill(await readPid(pidFile), name)]);
  }
  if (o.url) {
    const url = o.url;
    channels.push(['url', (e) => post(url, payload(e), o.timeoutMs, o.stop)]);
  }
  if (o.command) {
    const argv = o.command;
    channels.push(['command', (e) => run(argv, payload(e) + '\n', o.timeoutMs, o.stop)]);
  }
  const queues = channels.map(([channel, send]) =>
    latestOnly(async (e) => {
      if (o.stop.aborted) return;
      try {
        await send(e);
        o.logger.debug({ event: 'notify.sent', channel, lease_event: e.event }, 'notification sent');
      } catch (err) {
        if (o.stop.aborted) return;
        o.logger.warn(
          {
            event: 'notify.failed',
            channel,
            lease_event: e.event,
            message: err instanceof Error ? err.message : String(err),
          },
          'notification failed',
        );
      }
    }),
  );
  return {
    subscriber: (event) => {
      if (!NOTIFIED.has(event.event)) return;
      for (const q of queues) q.push(event);
    },
    idle: async () => {
      await Promise.all(queues.map((q) => q.idle()));
    },
  };
}
