/**
 * Child process: reads the credential directory the way applications are told to, as fast as it can,
 * until the file <stopFile> exists; then prints one JSON line of counts.
 *
 * Three read styles, round robin:
 *  - generation: readlink `..data` once, then read all five files inside that generation directory
 *    (the documented way). Every file must be one generation's exact content (else torn) and all five
 *    the same generation (else mixed). ENOENT means the writer removed that generation after a newer one
 *    was swapped in: the reader retries, counted as `vanished`, never as torn.
 *  - json: read the visible `credentials.json` alone; complete and self-consistent.
 *  - visible: the five visible names one by one (NOT the documented way): mixing is possible and only
 *    counted, as an illustration of why apps must resolve `..data` once.
 *  - recipe: the four visible names read with the README's consistent-read recipe (test/consumers/
 *    consistent-read.ts: `..data` resolved before and after; and the access-key-first-and-last variant),
 *    the way apps given four paths must read them. Every set it returns must be one generation.
 */
import { existsSync } from 'node:fs';
import { readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import {
  readConsistentPaths,
  readConsistentSet,
  type ConsistentRead,
} from '../../consumers/consistent-read.ts';
import { CREDENTIAL_FILES, classifyCredentialsJson, classifySet, type CredentialFile } from './generation.ts';

const [dir, stopFile] = process.argv.slice(2);
if (!dir || !stopFile) throw new Error('usage: reader.ts <dir> <stopFile>');

const counts = {
  generationReads: 0,
  jsonReads: 0,
  visibleReads: 0,
  torn: 0,
  mixed: 0,
  jsonTorn: 0,
  jsonMixed: 0,
  vanished: 0,
  empty: 0,
  visibleMixedInformational: 0,
  recipeReads: 0,
  recipeTorn: 0,
  recipeMixed: 0,
  recipeRetries: 0,
  distinctGenerations: 0,
  examples: [] as string[],
};
const seen = new Set<number>();

function isEnoent(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

async function readGeneration(): Promise<void> {
  let gen: string;
  try {
    gen = await readlink(path.join(dir!, '..data'));
  } catch (err) {
    if (isEnoent(err)) {
      counts.empty++;
      return;
    }
    throw err;
  }
  let files: [CredentialFile, string][];
  try {
    files = await readFiles(path.join(dir!, gen));
  } catch (err) {
    if (isEnoent(err)) {
      counts.vanished++;
      return;
    }
    throw err;
  }
  counts.generationReads++;
  const r = classifySet(files);
  if (r === 'torn' || r === 'mixed') {
    counts[r]++;
    if (counts.examples.length < 5) counts.examples.push(`${r} in ${gen}`);
  } else {
    seen.add(r);
  }
}

/** The five files under `base`, in order. */
async function readFiles(base: string): Promise<[CredentialFile, string][]> {
  const files: [CredentialFile, string][] = [];
  for (const name of CREDENTIAL_FILES) files.push([name, await readFile(path.join(base, name), 'utf8')]);
  return files;
}

async function readJson(): Promise<void> {
  let text: string;
  try {
    text = await readFile(path.join(dir!, 'credentials.json'), 'utf8');
  } catch (err) {
    if (isEnoent(err)) {
      counts.empty++;
      return;
    }
    throw err;
  }
  counts.jsonReads++;
  const r = classifyCredentialsJson(text);
  if (r === 'torn') counts.jsonTorn++;
  else if (r === 'mixed') counts.jsonMixed++;
  else seen.add(r);
}

async function readVisible(): Promise<void> {
  let files: [CredentialFile, string][];
  try {
    files = await readFiles(dir!);
  } catch (err) {
    if (isEnoent(err)) {
      counts.empty++;
      return;
    }
    throw err;
  }
  counts.visibleReads++;
  const r = classifySet(files);
  // A torn file is a real failure whichever way it is read.
  if (r === 'torn') counts.torn++;
  else if (r === 'mixed') counts.visibleMixedInformational++;
}

async function readRecipe(variant: 'data' | 'paths'): Promise<void> {
  const p = (name: string) => path.join(dir!, name);
  const r: ConsistentRead | undefined =
    variant === 'data'
      ? await readConsistentSet(dir!)
      : await readConsistentPaths({
          accessKey: p('access-key'),
          secretKey: p('secret-key'),
          sessionToken: p('session-token'),
          expiration: p('expiration'),
        });
  if (!r) {
    counts.empty++;
    return;
  }
  counts.recipeReads++;
  counts.recipeRetries += r.retries;
  const verdict = classifySet([
    ['access-key', r.set.accessKeyId],
    ['secret-key', r.set.secretAccessKey],
    ['session-token', r.set.sessionToken],
    ['expiration', r.set.expiration],
  ]);
  if (verdict === 'torn') counts.recipeTorn++;
  else if (verdict === 'mixed') {
    counts.recipeMixed++;
    if (counts.examples.length < 5) counts.examples.push(`recipe ${variant} mixed`);
  }
}

process.stdout.write('ready\n');
for (let i = 0; !existsSync(stopFile); i++) {
  const style = i % 5;
  if (style === 0) await readGeneration();
  else if (style === 1) await readJson();
  else if (style === 2) await readVisible();
  else await readRecipe(style === 3 ? 'data' : 'paths');
}
counts.distinctGenerations = seen.size;
process.stdout.write(JSON.stringify(counts) + '\n');
