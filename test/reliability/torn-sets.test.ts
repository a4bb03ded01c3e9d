// Issue 5.1 (short version): a separate reader process over 300 rotations sees no torn file and no mixed set.
// The 10,000-rotation proof is torn-sets.stress.test.ts (npm run test:stress).
import { describe, expect, it } from 'vitest';
import { classifyCredentialsJson, classifyFile, classifySet, generationFiles } from './support/generation.ts';
import { rotationVerdict, runRotations } from './support/rotation.ts';

describe('credential directory rotation (short)', () => {
  it('the reader detects torn and mixed content (the check itself can fail)', () => {
    const g7 = generationFiles(7);
    const g8 = generationFiles(8);
    expect(classifyFile('session-token', g7['session-token'])).toBe(7);
    expect(classifyFile('session-token', g7['session-token'].slice(0, 100))).toBe('torn');
    expect(classifyFile('secret-key', '')).toBe('torn');
    expect(classifyFile('expiration', g8.expiration)).toBe(8);
    expect(classifyCredentialsJson(g7['credentials.json'])).toBe(7);
    expect(classifyCredentialsJson(g7['credentials.json'].slice(0, -20))).toBe('torn');
    const mixed = JSON.stringify({
      ...JSON.parse(g7['credentials.json']),
      SecretAccessKey: JSON.parse(g8['credentials.json']).SecretAccessKey,
    });
    expect(classifyCredentialsJson(mixed + '\n')).toBe('mixed');
    // The one verdict every read style (generation, visible names, recipe) uses.
    expect(
      classifySet([
        ['access-key', g7['access-key']],
        ['expiration', g7.expiration],
      ]),
    ).toBe(7);
    expect(
      classifySet([
        ['access-key', g7['access-key']],
        ['expiration', g8.expiration],
      ]),
    ).toBe('mixed');
    expect(
      classifySet([
        ['access-key', g8['access-key']],
        ['secret-key', 'x'],
        ['expiration', g7.expiration],
      ]),
    ).toBe('torn');
  });

  it('control: a naive in-place writer is caught tearing and mixing by the same reader', async () => {
    const r = await runRotations(300, 'naive');
    console.info(`[reliability] naive control ${JSON.stringify({ ...r, examples: undefined })}`);
    expect(r.torn + r.jsonTorn + r.visibleMixedInformational).toBeGreaterThan(0);
  });

  it('300 rotations: 0 torn files, 0 mixed sets for a reader that resolves ..data once', async () => {
    const r = await runRotations(300);
    console.info(`[reliability] rotations=${r.rotations} ${JSON.stringify({ ...r, examples: undefined })}`);
    expect(rotationVerdict(r), r.examples.join('\n')).toEqual([]);
  });
});
