import type { CredentialSet } from '../domain/credentials.ts';
import type { LeaseSubscriber } from '../lease-events.ts';
import type { CredentialSink } from '../ports.ts';

/** The EKS Pod Identity Agent's rule, which SDKs are built around: a set this close to expiry is never served. */
export const MIN_SERVED_REMAINING_MS = 15_000;

/**
 * The set the loop last wrote, held in memory for the credentials endpoint. It is taken from the very
 * write that produced the files (the sink is wrapped), or at start from the complete set prepare() found
 * on disk, so the endpoint and the files never disagree;
 * lease events clear it, so nothing is served after a deny or an expiry.
 */
export interface ServedCredentials {
  /** Wraps the sink: a set is held once it went live on disk, dropped once it is removed. */
  wrap(sink: CredentialSink): CredentialSink;
  readonly subscriber: LeaseSubscriber;
  /** The set to serve now, or undefined (none, or 15 s or less left). */
  current(nowMs: number): CredentialSet | undefined;
}

export function createServedCredentials(): ServedCredentials {
  let held: CredentialSet | undefined;
  return {
    wrap: (sink) => ({
      prepare: async (signal) => {
        const found = await sink.prepare(signal);
        // A restart keeps the valid set on disk; the endpoint serves it too until the first new one.
        if (found?.set && held === undefined) held = found.set;
        return found;
      },
      write: async (set, signal) => {
        try {
          await sink.write(set, signal);
        } catch (err) {
          // Live on disk although a later step failed (see CredentialSink.write): the files hold it.
          if ((err as { committed?: boolean }).committed === true) held = set;
          throw err;
        }
        held = set;
      },
      remove: async (signal) => {
        held = undefined;
        await sink.remove(signal);
      },
    }),
    subscriber: (event) => {
      // A deny ends serving at once, even if removing the files fails and is retried later.
      if (event.event === 'lease.denied' || event.event === 'lease.revoked') held = undefined;
      if (event.event === 'lease.expired' && held?.accessKeyId === event.access_key_id) held = undefined;
    },
    current: (nowMs) =>
      held !== undefined && held.expiresAtMs - nowMs > MIN_SERVED_REMAINING_MS ? held : undefined,
  };
}

/**
 * One served set per lease: each lease's sink is wrapped by its own holder, and events go to the holder of
 * the lease they name, so a deny or an expiry of one lease never stops serving another.
 */
export interface ServedLeases {
  wrap(lease: string | undefined, sink: CredentialSink): CredentialSink;
  readonly subscriber: LeaseSubscriber;
  current(nowMs: number, lease: string | undefined): CredentialSet | undefined;
}

export function createServedLeases(names: readonly (string | undefined)[]): ServedLeases {
  const served = new Map(names.map((n) => [n, createServedCredentials()] as const));
  const of = (lease: string | undefined) => {
    const s = served.get(lease);
    if (s === undefined) throw new Error(`no such lease: ${String(lease)}`);
    return s;
  };
  return {
    wrap: (lease, sink) => of(lease).wrap(sink),
    subscriber: (event) => served.get(event.lease)?.subscriber(event),
    current: (nowMs, lease) => served.get(lease)?.current(nowMs),
  };
}
