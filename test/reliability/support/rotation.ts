/** Runs a rotation writer and a concurrent reader (two separate processes) and returns the reader's counts. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startScript } from './harness.ts';

export interface RotationResult {
  readonly rotations: number;
  readonly writerMs: number;
  readonly generationReads: number;
  readonly jsonReads: number;
  readonly visibleReads: number;
  readonly torn: number;
  readonly mixed: number;
  readonly jsonTorn: number;
  readonly jsonMixed: number;
  readonly vanished: number;
  readonly empty: number;
  readonly visibleMixedInformational: number;
  readonly recipeReads: number;
  readonly recipeTorn: number;
  readonly recipeMixed: number;
  readonly recipeRetries: number;
  readonly distinctGenerations: number;
  readonly examples: string[];
}

export async function runRotations(
  rotations: number,
  mode: 'atomic' | 'naive' = 'atomic',
): Promise<RotationResult> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'sts-rel-rot-'));
  const dir = path.join(root, 'credentials');
  const stop = path.join(root, 'stop');
  await mkdir(dir);
  try {
    const reader = startScript('reader.ts', [dir, stop]);
    await reader.waitForLine((l) => l === 'ready');
    const writer = startScript('writer.ts', [dir, '0', String(rotations), mode]);
    const done = await writer.waitForLine((l) => l.startsWith('done '), 900_000);
    const w = await writer.exited;
    if (w.code !== 0) throw new Error(`writer exited ${w.code}: ${writer.stderr()}`);
    await writeFile(stop, '');
    const r = await reader.exited;
    if (r.code !== 0) throw new Error(`reader exited ${r.code}: ${reader.stderr()}`);
    const counts = JSON.parse(reader.lines.find((l) => l.startsWith('{')) ?? '{}') as Omit<
      RotationResult,
      'rotations' | 'writerMs'
    >;
    const { ms } = JSON.parse(done.slice('done '.length)) as { ms: number };
    return { rotations, writerMs: ms, ...counts };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** The assertions both the short and the stress test make. */
export function rotationVerdict(r: RotationResult): string[] {
  const problems: string[] = [];
  if (r.torn !== 0) problems.push(`${r.torn} torn reads`);
  if (r.mixed !== 0) problems.push(`${r.mixed} mixed sets`);
  if (r.jsonTorn !== 0) problems.push(`${r.jsonTorn} torn credentials.json`);
  if (r.jsonMixed !== 0) problems.push(`${r.jsonMixed} mixed credentials.json`);
  if (r.recipeTorn !== 0) problems.push(`${r.recipeTorn} torn reads with the consistent-read recipe`);
  if (r.recipeMixed !== 0) problems.push(`${r.recipeMixed} mixed sets with the consistent-read recipe`);
  if (r.recipeReads < r.rotations / 4) problems.push(`only ${r.recipeReads} recipe reads`);
  // The proof is only worth something if the reader really read during the rotations.
  if (r.generationReads < r.rotations / 4) problems.push(`only ${r.generationReads} generation reads`);
  if (r.jsonReads < r.rotations / 4) problems.push(`only ${r.jsonReads} credentials.json reads`);
  if (r.distinctGenerations < r.rotations / 4)
    problems.push(`only ${r.distinctGenerations} distinct generations seen`);
  return problems;
}
