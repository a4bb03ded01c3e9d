/**
 * Records every secret the test suite creates (tokens, secret keys, session tokens) and every line of
 * output the sidecar produces, so that test/support/secret-scan-global.ts can prove, after the whole run,
 * that no secret ever appeared in a log line, an error message or check-config output.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';

function dir(kind: 'secrets' | 'logs'): string | undefined {
  const root = process.env.STSTEST_SCAN_DIR;
  if (!root) return undefined;
  const d = path.join(root, kind);
  mkdirSync(d, { recursive: true });
  return d;
}

/** Remembers a secret value for the end-of-run scan. */
export function recordSecret(value: string): void {
  const d = dir('secrets');
  if (d && value.length >= 8)
    appendFileSync(path.join(d, `${process.pid}.txt`), JSON.stringify(value) + '\n');
}

/** Appends sidecar output (any stream) for the end-of-run scan. */
export function recordOutput(label: string, text: string): void {
  const d = dir('logs');
  if (d) appendFileSync(path.join(d, `${process.pid}-${label.replace(/[^\w.-]/g, '_')}.log`), text);
}
