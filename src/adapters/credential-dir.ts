import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { formatExpiration, toCredentialProcess, type CredentialSet } from '../domain/credentials.ts';
import { OutputError } from '../errors.ts';
import type { CredentialSink } from '../ports.ts';

/** The visible file names, in the order apps usually read them. */
export const CREDENTIAL_FILES = [
  'access-key',
  'secret-key',
  'session-token',
  'expiration',
  'credentials.json',
] as const;
export type CredentialFile = (typeof CREDENTIAL_FILES)[number];

const DATA_LINK = '..data';
const DATA_TMP = '..data_tmp';
const GENERATION = /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.[0-9a-f]+$/;

export function renderCredentialFiles(set: CredentialSet): Record<CredentialFile, string> {
  return {
    'access-key': set.accessKeyId,
    'secret-key': set.secretAccessKey,
    'session-token': set.sessionToken,
    expiration: formatExpiration(set.expiresAtMs),
    'credentials.json': JSON.stringify(toCredentialProcess(set)) + '\n',
  };
}

/**
 * The kubelet atomic-writer layout: every set lives in a fresh hidden generation directory, `..data`
 * points at the current one and is swapped with a single rename, and each visible name is a symlink
 * through `..data`. A reader therefore never sees a torn file, and one that resolves `..data` once sees
 * one consistent set. Nothing found in the directory is ever followed: planted links are replaced, not
 * written through.
 */
export class CredentialDirectory implements CredentialSink {
  readonly #dir: string;
  readonly #mode: number;

  constructor(options: { dir: string; fileMode: number }) {
    this.#dir = options.dir;
    this.#mode = options.fileMode;
  }

  get dir(): string {
    return this.#dir;
  }

  async prepare(): Promise<{ expiresAtMs: number; set?: CredentialSet } | undefined> {
    await this.#checkDir();
    const current = await this.#currentGeneration();
    await this.#removeStale(current);
    if (!current) return undefined;
    const read = (name: CredentialFile) =>
      fs.readFile(path.join(this.#dir, current, name), 'utf8').then(
        (t) => t.trim(),
        () => '',
      );
    const expiresAtMs = Date.parse(await read('expiration'));
    if (!Number.isFinite(expiresAtMs)) return undefined;
    // One generation directory: the four files are one set (it is never modified once swapped in).
    const [accessKeyId, secretAccessKey, sessionToken] = await Promise.all([
      read('access-key'),
      read('secret-key'),
      read('session-token'),
    ]);
    return accessKeyId && secretAccessKey && sessionToken
      ? { expiresAtMs, set: { accessKeyId, secretAccessKey, sessionToken, expiresAtMs } }
      : { expiresAtMs };
  }

  async write(set: CredentialSet): Promise<void> {
    await this.#checkDir();
    // Refuse before anything changes: a failure after the ..data swap would leave a half-linked set.
    for (const name of CREDENTIAL_FILES) {
      const visible = path.join(this.#dir, name);
      if ((await lstatOrUndefined(visible))?.isDirectory()) {
        throw new OutputError('ERR_OUTPUT_DIR', `${visible} is a directory; refusing to replace it`);
      }
    }
    const generation = `..${timestamp(new Date())}.${randomBytes(6).toString('hex')}`;
    const genPath = path.join(this.#dir, generation);
    let swapped = false;
    try {
      await fs.mkdir(genPath, { mode: directoryMode(this.#mode) });
      // mkdir's mode is filtered by the umask; the configured access must hold whatever the umask.
      await fs.chmod(genPath, directoryMode(this.#mode));
      const files = renderCredentialFiles(set);
      for (const name of CREDENTIAL_FILES) {
        const file = path.join(genPath, name);
        await writeFileAtomic(file, files[name], { mode: this.#mode, fsync: true });
        await fs.chmod(file, this.#mode);
      }
      await fsyncPath(genPath);
      await this.#swapDataLink(generation);
      swapped = true;
      for (const name of CREDENTIAL_FILES) await this.#ensureVisibleLink(name);
      await fsyncPath(this.#dir);
    } catch (err) {
      // Until the swap the new generation is garbage; after it, ..data points at it: it is the live set.
      if (!swapped) await fs.rm(genPath, { recursive: true, force: true }).catch(() => undefined);
      const out = err instanceof OutputError ? err : translateFsError(err, this.#dir);
      throw Object.assign(out, { committed: swapped });
    }
    await this.#removeStale(generation);
  }

  async remove(): Promise<void> {
    try {
      // Visible names first: from this instant no reader finds a credential, which is the point.
      for (const name of CREDENTIAL_FILES) await unlinkIfLink(path.join(this.#dir, name));
      await unlinkIfLink(path.join(this.#dir, DATA_LINK));
      await this.#removeStale(undefined);
      await fsyncPath(this.#dir).catch(() => undefined);
    } catch (err) {
      throw translateFsError(err, this.#dir);
    }
  }

  async #checkDir(): Promise<void> {
    let stat;
    try {
      stat = await fs.stat(this.#dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new OutputError(
        'ERR_OUTPUT_DIR',
        code === 'ENOENT'
          ? `output directory ${this.#dir} does not exist (STS_SIDECAR_OUTPUT_DIR)`
          : `output directory ${this.#dir} is not usable (${code ?? 'error'}) (STS_SIDECAR_OUTPUT_DIR)`,
        { cause: err },
      );
    }
    if (!stat.isDirectory()) {
      throw new OutputError(
        'ERR_OUTPUT_DIR',
        `output path ${this.#dir} is not a directory (STS_SIDECAR_OUTPUT_DIR)`,
      );
    }
  }

  async #swapDataLink(generation: string): Promise<void> {
    const tmp = path.join(this.#dir, DATA_TMP);
    await fs.rm(tmp, { force: true, recursive: false }).catch(() => undefined);
    await fs.symlink(generation, tmp);
    const dataPath = path.join(this.#dir, DATA_LINK);
    const existing = await lstatOrUndefined(dataPath);
    if (existing && !existing.isSymbolicLink()) {
      await fs.unlink(tmp).catch(() => undefined);
      throw new OutputError(
        'ERR_OUTPUT_DIR',
        `${dataPath} exists and is not a symlink; refusing to replace it`,
      );
    }
    await fs.rename(tmp, dataPath);
  }

  async #ensureVisibleLink(name: CredentialFile): Promise<void> {
    const visible = path.join(this.#dir, name);
    const target = path.join(DATA_LINK, name);
    const stat = await lstatOrUndefined(visible);
    if (stat?.isSymbolicLink() && (await fs.readlink(visible)) === target) return;
    if (stat?.isDirectory()) {
      throw new OutputError('ERR_OUTPUT_DIR', `${visible} is a directory; refusing to replace it`);
    }
    // A missing name, a regular file, or a link planted to point elsewhere: replace the entry itself
    // (rename never follows a link at the destination), so a write can never land outside the directory.
    const tmp = path.join(this.#dir, `..${name}.tmp`);
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    await fs.symlink(target, tmp);
    await fs.rename(tmp, visible);
  }

  async #currentGeneration(): Promise<string | undefined> {
    try {
      const target = await fs.readlink(path.join(this.#dir, DATA_LINK));
      return GENERATION.test(target) ? target : undefined;
    } catch {
      return undefined;
    }
  }

  /** Generation directories other than `keep`, and temporaries an interrupted run left behind. */
  async #removeStale(keep: string | undefined): Promise<void> {
    const entries = await fs.readdir(this.#dir, { withFileTypes: true });
    for (const entry of entries) {
      const stale =
        (GENERATION.test(entry.name) && entry.name !== keep && entry.isDirectory()) ||
        entry.name === DATA_TMP ||
        /^\.\..+\.tmp$/.test(entry.name);
      if (stale) await fs.rm(path.join(this.#dir, entry.name), { recursive: true, force: true });
    }
  }
}

/** Owner rwx; group and others may traverse only if the file mode lets them read. */
function directoryMode(fileMode: number): number {
  return 0o700 | (fileMode & 0o040 ? 0o050 : 0) | (fileMode & 0o004 ? 0o005 : 0);
}

function timestamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}_${p(d.getUTCMonth() + 1)}_${p(d.getUTCDate())}_${p(d.getUTCHours())}_${p(d.getUTCMinutes())}_${p(d.getUTCSeconds())}`;
}

async function fsyncPath(p: string): Promise<void> {
  const handle = await fs.open(p, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function lstatOrUndefined(p: string) {
  try {
    return await fs.lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function unlinkIfLink(p: string): Promise<void> {
  const stat = await lstatOrUndefined(p);
  if (stat && !stat.isDirectory()) await fs.unlink(p);
}

function translateFsError(err: unknown, dir: string): OutputError {
  const code = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.name : 'error');
  const why: Record<string, string> = {
    ENOSPC: 'no space left on the device',
    EROFS: 'the file system is read-only',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EDQUOT: 'disk quota exceeded',
  };
  return new OutputError(
    'ERR_OUTPUT_WRITE',
    `cannot write the credential set in ${dir} (${why[code] ?? code}) (STS_SIDECAR_OUTPUT_DIR)`,
    {
      cause: err,
    },
  );
}
