import { systemClock } from '../adapters/system-clock.ts';
import type { LeaseReporter } from '../lease-events.ts';
import { LeaseLoop, type LeaseSettings } from '../lease-loop.ts';
import type { Logger } from '../logger.ts';
import type { CredentialSink } from '../ports.ts';
import type { LeaseClients } from './lease-clients.ts';
import type { Part } from './run-group.ts';

/** One lease: its settings and sink; the clients are shared by every lease of the daemon. */
export interface LeaseLoopPartOptions {
  readonly name: string;
  readonly settings: LeaseSettings;
  readonly sink: CredentialSink;
  readonly clients: LeaseClients;
  readonly report: LeaseReporter;
  readonly random: () => number;
  /** Remove the set when the daemon stops, bounded by this deadline (undefined: keep it). */
  readonly wipeOnExitMs: number | undefined;
  readonly logger: Logger;
}

/** A lease loop as a part: runs until interrupted, then (wipe on exit) removes its set. */
export interface LeaseLoopPart extends Part {
  readonly loop: LeaseLoop;
}

/** The loop over the shared clients, as the daemon and the one-shot commands build it. */
export function createLeaseLoop(
  o: Omit<LeaseLoopPartOptions, 'name' | 'wipeOnExitMs' | 'logger'>,
): LeaseLoop {
  const { tokens, identity, policy, issuer } = o.clients;
  return new LeaseLoop(o.settings, {
    tokens,
    identity,
    policy,
    issuer,
    sink: o.sink,
    clock: systemClock,
    random: o.random,
    report: o.report,
  });
}

export function leaseLoopPart(o: LeaseLoopPartOptions): LeaseLoopPart {
  const loop = createLeaseLoop(o);
  let ran = false;
  return {
    name: o.name,
    loop,
    run: (interrupt) => {
      ran = true;
      return loop.run(interrupt);
    },
    close: async () => {
      // A daemon that failed to start never ran the loop: a set an earlier run left stays.
      if (o.wipeOnExitMs === undefined || !ran) return;
      // Bounded: a hung API server (Secret sink) must not hold the pod past its grace period.
      await loop
        .wipe(AbortSignal.timeout(o.wipeOnExitMs))
        .catch((err: unknown) =>
          o.logger.error(
            { event: 'sidecar.wipe_failed', message: (err as Error).message },
            'wipe on exit failed',
          ),
        );
    },
  };
}
