import { watchTokenDirectory, type FileTokenSource } from '../adapters/token-file.ts';
import type { LeaseLoop } from '../lease-loop.ts';
import type { Logger } from '../logger.ts';
import type { Part } from './run-group.ts';

/**
 * Watches the projected token's directory: logs each rotation, counts it, and wakes a loop that waits
 * for a new token. A watch that cannot start is logged; the loops re-read the token at every attempt.
 */
export function tokenWatcherPart(o: {
  readonly tokenFile: string;
  readonly tokens: FileTokenSource;
  readonly loops: readonly LeaseLoop[];
  readonly observeRotation: () => void;
  readonly logger: Logger;
}): Part {
  const { logger } = o;
  let watcher: { close(): Promise<void> } | undefined;
  const watchFailed = (err: unknown) =>
    logger.warn(
      { event: 'token.watch_failed', message: err instanceof Error ? err.message : String(err) },
      'token watch failed',
    );
  return {
    name: 'token-watcher',
    start: async () => {
      let lastToken = await o.tokens.peek();
      const changed = async () => {
        const t = await o.tokens.peek();
        if (!t || t.fingerprint === lastToken?.fingerprint) return;
        lastToken = t;
        o.observeRotation();
        logger.info(
          {
            event: 'token.rotated',
            issuer: t.issuer,
            subject: t.subject,
            issued_at: t.issuedAtMs === undefined ? undefined : new Date(t.issuedAtMs).toISOString(),
            expires_at: new Date(t.expiresAtMs).toISOString(),
          },
          'token rotated',
        );
        // A loop that is failing (often on an expired or missing token) should try the new one at once.
        // So should one whose lease ended with the old token's exp (re-sending it gets no longer lease).
        for (const loop of o.loops) if (loop.failures > 0 || loop.awaitingNewToken) loop.refreshNow();
      };
      watcher = await watchTokenDirectory(o.tokenFile, () => void changed(), watchFailed).catch(
        (err: unknown) => {
          watchFailed(err);
          return undefined;
        },
      );
    },
    close: async () => watcher?.close(),
  };
}
