import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { decodeJwt, errors as joseErrors } from 'jose';
import { TokenError } from '../errors.ts';
import type { Token, TokenSource } from '../ports.ts';

/** Projected tokens are about 1 KiB; anything far larger is not a token. */
export const TOKEN_MAX_BYTES = 64 * 1024;

export interface TokenFileOptions {
  readonly path: string;
  /** When set, `aud` must contain it. */
  readonly audience: string | undefined;
  readonly now: () => number;
  readonly maxBytes?: number;
}

/**
 * Reads the projected token at every call (kubelet rotates it; caching would hand out a stale one) and
 * checks it locally so that a token that cannot work costs no remote call. Never a replacement for the
 * server's verification: the signature is not checked here.
 */
export class FileTokenSource implements TokenSource {
  readonly #o: TokenFileOptions;

  constructor(options: TokenFileOptions) {
    this.#o = options;
  }

  async read(): Promise<Token> {
    const raw = await this.#readRaw();
    return checkToken(raw, `token file ${this.#o.path}`, this.#o.audience, this.#o.now());
  }

  /**
   * Claims only, without the validity checks: for logging a rotation. Never throws. `fingerprint` (a
   * SHA-256 of the token, for comparing two reads in memory; never logged) tells tokens apart even when
   * kubelet issued them within the same second.
   */
  async peek(): Promise<
    (Pick<Token, 'issuer' | 'subject' | 'issuedAtMs' | 'expiresAtMs'> & { fingerprint: string }) | undefined
  > {
    try {
      const raw = await this.#readRaw();
      const claims = decodeJwt(raw);
      return {
        fingerprint: createHash('sha256').update(raw).digest('hex'),
        issuer: claims.iss,
        subject: claims.sub ?? '',
        issuedAtMs: typeof claims.iat === 'number' ? claims.iat * 1000 : undefined,
        expiresAtMs: typeof claims.exp === 'number' ? claims.exp * 1000 : 0,
      };
    } catch {
      return undefined;
    }
  }

  async #readRaw(): Promise<string> {
    const file = this.#o.path;
    const max = this.#o.maxBytes ?? TOKEN_MAX_BYTES;
    let handle;
    try {
      handle = await open(file, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT')
        throw new TokenError(
          'ERR_TOKEN_MISSING',
          `token file ${file} does not exist (STS_SIDECAR_TOKEN_FILE)`,
          { cause: err },
        );
      throw new TokenError(
        'ERR_TOKEN_UNREADABLE',
        `token file ${file} cannot be opened (${code ?? 'error'})`,
        { cause: err },
      );
    }
    try {
      const stat = await handle.stat();
      if (!stat.isFile())
        throw new TokenError('ERR_TOKEN_UNREADABLE', `token file ${file} is not a regular file`);
      if (stat.size > max)
        throw new TokenError(
          'ERR_TOKEN_TOO_LARGE',
          `token file ${file} is ${stat.size} bytes, over the ${max}-byte cap`,
        );
      const buffer = Buffer.alloc(max + 1);
      const { bytesRead } = await handle.read(buffer, 0, max + 1, 0);
      if (bytesRead > max)
        throw new TokenError('ERR_TOKEN_TOO_LARGE', `token file ${file} is over the ${max}-byte cap`);
      const raw = buffer.subarray(0, bytesRead).toString('utf8').trim();
      if (raw === '') throw new TokenError('ERR_TOKEN_EMPTY', `token file ${file} is empty`);
      return raw;
    } catch (err) {
      if (err instanceof TokenError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      throw new TokenError('ERR_TOKEN_UNREADABLE', `token file ${file} cannot be read (${code ?? 'error'})`, {
        cause: err,
      });
    } finally {
      await handle.close();
    }
  }
}

/**
 * The local pre-checks, pure but for the clock reading passed in. `what` names the token and where it came
 * from, as the start of a sentence in the messages: "token file /var/run/...", or the IdP answer.
 */
export function checkToken(raw: string, what: string, audience: string | undefined, nowMs: number): Token {
  let claims;
  try {
    claims = decodeJwt(raw);
  } catch (err) {
    const why = err instanceof joseErrors.JOSEError ? err.code : 'not a JWT';
    throw new TokenError('ERR_TOKEN_MALFORMED', `${what} is not a JWT (${why})`, {
      cause: err,
      retryable: true,
    });
  }
  if (typeof claims.exp !== 'number') throw new TokenError('ERR_TOKEN_MALFORMED', `${what} has no exp claim`);
  if (typeof claims.sub !== 'string' || claims.sub === '')
    throw new TokenError('ERR_TOKEN_MALFORMED', `${what} has no sub claim`);
  const nowSec = nowMs / 1000;
  if (claims.exp <= nowSec) {
    throw new TokenError(
      'ERR_TOKEN_EXPIRED',
      `${what} expired at ${new Date(claims.exp * 1000).toISOString()}`,
    );
  }
  if (typeof claims.nbf === 'number' && claims.nbf > nowSec) {
    throw new TokenError(
      'ERR_TOKEN_NOT_YET_VALID',
      `${what} is not valid before ${new Date(claims.nbf * 1000).toISOString()}`,
    );
  }
  const aud = claims.aud === undefined ? [] : Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (audience !== undefined && !aud.includes(audience)) {
    throw new TokenError(
      'ERR_TOKEN_AUDIENCE',
      `${what} is not for audience ${audience} (STS_SIDECAR_TOKEN_AUDIENCE); it has ${aud.length === 0 ? 'no aud' : aud.join(', ')}`,
    );
  }
  const tenant = claims['tenant'];
  // Only a string names a tenant. An absent claim is the loop's call (allowed on the direct path, refused
  // with the exchange on); a present claim of any other type (["team-a"], null, 7) must never be coerced
  // into one that compares equal, so it is refused here, on both paths, as a token without a usable tenant.
  if (tenant !== undefined && typeof tenant !== 'string') {
    throw new TokenError(
      'ERR_TOKEN_TENANT_MISSING',
      `${what} has a tenant claim that is not a string (${tenant === null ? 'null' : Array.isArray(tenant) ? 'array' : typeof tenant}); refusing to ask for credentials`,
      { retryable: false },
    );
  }
  const principalType = claims['principal_type'];
  const assurance = claims['assurance'];
  return {
    raw,
    issuer: claims.iss,
    subject: claims.sub,
    audience: aud,
    tenant,
    issuedAtMs: typeof claims.iat === 'number' ? claims.iat * 1000 : undefined,
    expiresAtMs: claims.exp * 1000,
    ...(typeof principalType === 'string' ? { principalType } : {}),
    ...(typeof assurance === 'string' ? { assurance } : {}),
  };
}

/**
 * Watches the token's directory, not the file: kubelet rotates by swapping the `..data` symlink, so the
 * file's own inode never changes. Any event in the directory is a hint; the caller re-reads and compares.
 */
export async function watchTokenDirectory(
  tokenFile: string,
  onChange: () => void,
  onError: (err: Error) => void = () => undefined,
): Promise<{ close(): Promise<void> }> {
  const { watch } = await import('chokidar');
  const watcher = watch(path.dirname(tokenFile), { depth: 0, ignoreInitial: true, followSymlinks: false });
  let timer: NodeJS.Timeout | undefined;
  // kubelet's swap is several events (new dir, ..data_tmp, rename, old dir removal): coalesce them.
  watcher.on('all', () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(onChange, 50);
  });
  // Watch errors (an exhausted inotify limit, EACCES) must not crash the daemon: the token is re-read at
  // every exchange anyway, so only the rotation log line is lost.
  watcher.on('error', (err) => onError(err instanceof Error ? err : new Error(String(err))));
  await new Promise<void>((resolve, reject) => {
    watcher.once('ready', () => resolve());
    watcher.once('error', reject);
  });
  return {
    async close() {
      if (timer) clearTimeout(timer);
      await watcher.close();
    },
  };
}
