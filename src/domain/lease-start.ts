/**
 * Start-up spacing of the named leases of one sidecar: lease 0 starts at once, lease i at a uniformly random
 * instant in its own slot [i, i + 1) x LEASE_START_SLOT_MS. The leases of one pod then never hit flex-auth
 * and the STS together at start (each slot holds one lease), a whole fleet starting at once does not make N
 * waves a slot apart (the instants are random inside the slots), and the last lease of a pod of N is ready
 * at most N slots later. Refreshes need no such rule: each lease draws its own jitter (see schedule.ts).
 */
export const LEASE_START_SLOT_MS = 1_000;

/** Delay before lease `index` (config order) starts; `random` is uniform in [0, 1). */
export function leaseStartDelayMs(index: number, random: number): number {
  return index === 0 ? 0 : (index + random) * LEASE_START_SLOT_MS;
}
