import { fanOutIsolated, type LeaseReporter, type LeaseSubscriber } from '../lease-events.ts';

/**
 * One long-lived piece of the daemon (a lease loop, the health server, the notifier, ...). Every member is
 * optional: a part that only reacts to lease events has just a subscriber, a client only a close.
 */
export interface Part {
  /** Names the part in logs. */
  readonly name: string;
  /** Lease events it reacts to; the group's reporter hands each event to the parts in list order. */
  readonly subscriber?: LeaseSubscriber;
  /** Brings the part up (listen, watch); a rejection closes the parts started before it, in reverse. */
  start?(): Promise<void>;
  /**
   * Its work until `interrupt` aborts (oklog/run's execute and interrupt): when any part's run returns
   * or throws, or the daemon's signal aborts, every part is interrupted.
   */
  run?(interrupt: AbortSignal): Promise<void>;
  /** Releases what start took, once every run has returned; parts close in reverse list order. */
  close?(): Promise<void>;
}

/** Hands each lease event to the parts' subscribers in list order; one that throws never stops the rest. */
export function subscribersOf(
  parts: readonly Part[],
  onError: (err: unknown, index: number) => void,
): LeaseReporter {
  return fanOutIsolated(onError, ...parts.flatMap((p) => (p.subscriber ? [p.subscriber] : [])));
}

/**
 * Starts the parts in list order and returns once all are up; a failed start closes what had started
 * (reverse order) and rethrows. `done` settles after the first run ended (or `signal` aborted), every
 * part was interrupted, every run returned and every part closed; it rejects with the first run's error.
 */
export async function startParts(
  parts: readonly Part[],
  signal: AbortSignal,
  onCloseError: (part: string, err: unknown) => void,
): Promise<{ readonly done: Promise<void> }> {
  const started: Part[] = [];
  const closeStarted = async () => {
    for (const part of started.reverse()) await part.close?.().catch((err) => onCloseError(part.name, err));
  };
  for (const part of parts) {
    try {
      await part.start?.();
    } catch (err) {
      await closeStarted();
      throw err;
    }
    started.push(part);
  }
  const interrupt = new AbortController();
  const stopAll = () => interrupt.abort();
  signal.addEventListener('abort', stopAll, { once: true });
  if (signal.aborted) stopAll();
  const runs = parts.map(async (part) => {
    try {
      await part.run?.(interrupt.signal);
    } finally {
      // A part without a run waits for the others; one whose run ended ends them all.
      if (part.run) stopAll();
    }
  });
  const done = (async () => {
    try {
      const ended = await Promise.allSettled(runs);
      const failed = ended.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    } finally {
      signal.removeEventListener('abort', stopAll);
      await closeStarted();
    }
  })();
  return { done };
}

/** Resolves when `signal` aborts: the run of a part whose only work is to react to the interrupt. */
export function interrupted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}
