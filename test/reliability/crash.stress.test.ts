// Issue 5.2: >= 500 kill -9 of a writer at random points during CredentialDirectory.write.
import { describe, expect, it } from 'vitest';
import { runCrashes } from './support/crash.ts';

const KILLS = Number(process.env.STSTEST_KILLS ?? 500);

describe('crash safety (stress)', () => {
  it(`${KILLS} kill -9 during writes: previous or new complete set, never visible leftovers`, async () => {
    const r = await runCrashes(KILLS);
    console.info(`[reliability] crash kills=${r.kills} ${JSON.stringify(r)}`);
    expect(r.problems).toEqual([]);
    expect(r.badStates).toBe(0);
    expect(r.uncleaned).toBe(0);
    // Proof that kills really landed inside writes, not only between them.
    expect(r.interrupted).toBeGreaterThan(KILLS / 10);
  });
});
