// Issue 5.1: >= 10,000 rotations of the credential directory under a concurrent reader process.
import { describe, expect, it } from 'vitest';
import { rotationVerdict, runRotations } from './support/rotation.ts';

const ROTATIONS = Number(process.env.STSTEST_ROTATIONS ?? 10_000);

describe('credential directory rotation (stress)', () => {
  it(`${ROTATIONS} rotations: 0 torn files, 0 mixed sets`, async () => {
    const r = await runRotations(ROTATIONS);
    console.info(`[reliability] rotations=${r.rotations} ${JSON.stringify({ ...r, examples: undefined })}`);
    expect(rotationVerdict(r), r.examples.join('\n')).toEqual([]);
  });
});
