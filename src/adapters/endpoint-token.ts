import { randomBytes } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { SidecarError } from '../errors.ts';

const VAR = 'STS_SIDECAR_CREDENTIALS_ENDPOINT_TOKEN_FILE';
/** Header-safe and long enough to be a secret; no white space (SDKs reject a trailing newline). */
const TOKEN = /^[\x21-\x7e]{16,4096}$/;

/**
 * The endpoint's caller token: the file's content when it exists (e.g. a Kubernetes Secret), else a
 * fresh 256-bit random token written there atomically with the credential files' mode, no newline.
 */
export async function loadOrCreateEndpointToken(file: string, fileMode: number): Promise<string> {
  let existing: string | undefined;
  try {
    existing = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') {
      throw new SidecarError('ERR_CONFIG', `${VAR}: cannot read ${file} (${code ?? 'error'})`, {
        cause: err,
      });
    }
  }
  if (existing !== undefined) {
    if (!TOKEN.test(existing)) {
      throw new SidecarError(
        'ERR_CONFIG',
        `${VAR}: ${file} must hold 16-4096 printable characters without white space or a trailing newline`,
      );
    }
    return existing;
  }
  const token = randomBytes(32).toString('base64url');
  try {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFileAtomic(file, token, { mode: fileMode, encoding: 'utf8' });
  } catch (err) {
    throw new SidecarError(
      'ERR_CONFIG',
      `${VAR}: cannot write ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      { cause: err },
    );
  }
  return token;
}

/** What identifies one version of the file (a Kubernetes Secret update swaps in a new inode). */
async function version(file: string): Promise<string | undefined> {
  try {
    const s = await stat(file);
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
  } catch {
    return undefined;
  }
}

/**
 * Re-reads the token file only when it changed (one stat, called on a refused token, so a rotated
 * Secret is picked up without a restart and without a periodic timer). Resolves to the new token, or
 * undefined when the file is unchanged, unreadable or holds no valid token (the current one stays).
 */
export function endpointTokenReloader(file: string): () => Promise<string | undefined> {
  // Unknown at first: the first refusal reads the file once, so a change during start-up is not missed.
  let seen: string | undefined;
  return async () => {
    const now = await version(file);
    if (now === undefined || now === seen) return undefined;
    seen = now;
    const text = await readFile(file, 'utf8').catch(() => undefined);
    return text !== undefined && TOKEN.test(text) ? text : undefined;
  };
}
