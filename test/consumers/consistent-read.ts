/**
 * Reference implementation of the README's consistent-read recipe for apps that read the four visible
 * files (access-key, secret-key, session-token, expiration) as separate paths. No vitest import: the
 * stress reader process uses it too.
 *
 * Recipe: resolve `..data` (readlink), read the four files through their visible names, resolve `..data`
 * again; the set is consistent exactly when both resolutions are equal (generation names are never
 * reused), else read again. A read that meets ENOENT (a generation removed mid-read) also reads again.
 * Without readlink, reading `access-key` first and again last works the same way (access key ids are
 * never reused).
 */
import { readFile, readlink, stat } from 'node:fs/promises';
import path from 'node:path';

export interface SeparateFilesSet {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: string;
}

export interface ConsistentRead {
  readonly set: SeparateFilesSet;
  /** How many reads were thrown away because a rotation happened during them. */
  readonly retries: number;
}

const isEnoent = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';

/** Resolves `..data` before and after. `undefined`: no set on disk (after a deny or expiry). */
export async function readConsistentSet(dir: string, maxAttempts = 100): Promise<ConsistentRead | undefined> {
  for (let retries = 0; retries < maxAttempts; retries++) {
    try {
      const before = await readlink(path.join(dir, '..data'));
      const read = (name: string) => readFile(path.join(dir, name), 'utf8');
      const set = {
        accessKeyId: await read('access-key'),
        secretAccessKey: await read('secret-key'),
        sessionToken: await read('session-token'),
        expiration: await read('expiration'),
      };
      if ((await readlink(path.join(dir, '..data'))) === before) return { set, retries };
    } catch (err) {
      if (!isEnoent(err)) throw err;
      if (!(await present(path.join(dir, '..data')))) return undefined;
    }
  }
  throw new Error(`no consistent set after ${maxAttempts} reads of ${dir}`);
}

/** The variant for apps given only the four paths: `access-key` first and again last. */
export async function readConsistentPaths(
  paths: { accessKey: string; secretKey: string; sessionToken: string; expiration: string },
  maxAttempts = 100,
): Promise<ConsistentRead | undefined> {
  for (let retries = 0; retries < maxAttempts; retries++) {
    try {
      const accessKeyId = await readFile(paths.accessKey, 'utf8');
      const secretAccessKey = await readFile(paths.secretKey, 'utf8');
      const sessionToken = await readFile(paths.sessionToken, 'utf8');
      const expiration = await readFile(paths.expiration, 'utf8');
      if ((await readFile(paths.accessKey, 'utf8')) === accessKeyId) {
        return { set: { accessKeyId, secretAccessKey, sessionToken, expiration }, retries };
      }
    } catch (err) {
      if (!isEnoent(err)) throw err;
      if (!(await present(paths.accessKey))) return undefined;
    }
  }
  throw new Error(`no consistent set after ${maxAttempts} reads`);
}

async function present(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch (err) {
    if (isEnoent(err)) return false;
    throw err;
  }
}
