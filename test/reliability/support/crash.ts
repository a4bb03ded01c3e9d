/**
 * kill -9 a writer process at random points while it rotates the credential directory, and after every
 * kill check what a reader would see through the visible names; then restart (CredentialDirectory.prepare)
 * and check that the interrupted write's leftovers are gone.
 */
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CredentialDirectory } from '../../../src/adapters/credential-dir.ts';
import { CREDENTIAL_FILES, classifyFile, generationSet } from './generation.ts';
import { sleep, snapshotDir, startScript } from './harness.ts';

export interface CrashResult {
  readonly kills: number;
  /** Kills after which the visible names did not show one complete set of the previous or next generation. */
  readonly badStates: number;
  /** Kills that left hidden leftovers (proof that kills landed inside writes). */
  readonly interrupted: number;
  readonly leftoverKinds: Record<string, number>;
  /** Kills after which prepare() did not leave exactly ..data, one generation and the five names. */
  readonly uncleaned: number;
  /** How far the visible generation was ahead of the last write the writer reported as finished. */
  readonly aheadOfCommitted: Record<string, number>;
  readonly problems: string[];
}

const GENERATION = /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.[0-9a-f]+$/;

export async function runCrashes(
  kills: number,
  maxDelayMs = 40,
  mode: 'atomic' | 'naive' = 'atomic',
): Promise<CrashResult> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'sts-rel-crash-'));
  const dir = path.join(root, 'credentials');
  await mkdir(dir);
  const problems: string[] = [];
  const leftoverKinds: Record<string, number> = {};
  const aheadOfCommitted: Record<string, number> = {};
  let badStates = 0;
  let interrupted = 0;
  let uncleaned = 0;
  const note = (p: string) => {
    if (problems.length < 20) problems.push(p);
  };
  try {
    // Seed one complete set: every kill below happens over an existing set, the steady state.
    const seed = startScript('writer.ts', [dir, '0', '1', mode]);
    if ((await seed.exited).code !== 0) throw new Error(`seed writer failed: ${seed.stderr()}`);
    let current = 0;
    for (let i = 0; i < kills; i++) {
      const writer = startScript('writer.ts', [dir, String(current + 1), 'forever', mode]);
      await writer.waitForLine((l) => l === 'ready');
      await sleep(Math.random() * maxDelayMs);
      writer.child.kill('SIGKILL');
      await writer.exited;
      const committed = writer.lines
        .filter((l) => l.startsWith('committed '))
        .map((l) => Number(l.slice(10)));
      const lastCommitted = committed.length > 0 ? Math.max(...committed) : current;

      // What a reader sees through the visible names.
      const snap = await snapshotDir(dir);
      const visibleEntries = Object.keys(snap.entries).filter((n) => !n.startsWith('.'));
      const gens = CREDENTIAL_FILES.map((n) =>
        snap.visible[n] === null ? 'missing' : classifyFile(n, snap.visible[n]!),
      );
      const ok =
        visibleEntries.sort().join(',') === [...CREDENTIAL_FILES].sort().join(',') &&
        CREDENTIAL_FILES.every((n) => snap.entries[n] === `link:..data/${n}`) &&
        gens.every((g) => typeof g === 'number' && g === gens[0]) &&
        (gens[0] === lastCommitted || gens[0] === lastCommitted + 1);
      if (!ok) {
        badStates++;
        note(
          `kill ${i}: visible=${visibleEntries.join(',')} gens=${JSON.stringify(gens)} lastCommitted=${lastCommitted}`,
        );
        continue;
      }
      const gen = gens[0] as number;
      aheadOfCommitted[String(gen - lastCommitted)] =
        (aheadOfCommitted[String(gen - lastCommitted)] ?? 0) + 1;
      const dataTarget = snap.entries['..data']?.slice('link:'.length) ?? '';
      const inGeneration = (await readdir(path.join(dir, dataTarget))).sort();
      if (inGeneration.join(',') !== [...CREDENTIAL_FILES].sort().join(',')) {
        badStates++;
        note(`kill ${i}: current generation holds ${inGeneration.join(',')}`);
      }

      // Hidden leftovers of the interrupted write (a reader never looks at them).
      const leftovers = Object.keys(snap.entries).filter(
        (n) => n.startsWith('.') && n !== '..data' && n !== dataTarget,
      );
      if (leftovers.length > 0) interrupted++;
      for (const n of leftovers) {
        const kind = GENERATION.test(n)
          ? 'generation dir'
          : n === '..data_tmp'
            ? '..data_tmp'
            : n.endsWith('.tmp')
              ? 'link tmp'
              : `other:${n}`;
        leftoverKinds[kind] = (leftoverKinds[kind] ?? 0) + 1;
      }

      // Restart: prepare() keeps the current set and removes everything else hidden.
      const found = await new CredentialDirectory({ dir, fileMode: 0o440 }).prepare();
      const after = await snapshotDir(dir);
      const expected = ['..data', dataTarget, ...CREDENTIAL_FILES].sort().join(',');
      if (
        Object.keys(after.entries).sort().join(',') !== expected ||
        JSON.stringify(after.visible) !== JSON.stringify(snap.visible)
      ) {
        uncleaned++;
        note(`kill ${i}: after prepare: ${Object.keys(after.entries).join(',')}`);
      }
      if (found?.expiresAtMs !== Math.floor(generationSet(gen).expiresAtMs / 1000) * 1000) {
        uncleaned++;
        note(`kill ${i}: prepare() reported ${JSON.stringify(found)} for generation ${gen}`);
      }
      current = gen;
    }
    return { kills, badStates, interrupted, leftoverKinds, uncleaned, aheadOfCommitted, problems };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
