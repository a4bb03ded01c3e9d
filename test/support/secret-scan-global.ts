/**
 * vitest globalSetup: gives the run a scratch folder for recorded secrets and output, and at teardown
 * scans every recorded output line for every recorded secret. A single hit fails the run.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

let root: string | undefined;

export function setup(): void {
  root = mkdtempSync(path.join(os.tmpdir(), 'sts-sidecar-scan-'));
  process.env.STSTEST_SCAN_DIR = root;
}

export function teardown(): void {
  if (!root) return;
  const read = (kind: string) => {
    const d = path.join(root!, kind);
    try {
      return readdirSync(d).map((f) => readFileSync(path.join(d, f), 'utf8'));
    } catch {
      return [];
    }
  };
  const secrets = new Set(
    read('secrets')
      .flatMap((t) => t.split('\n'))
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as string),
  );
  const logs = read('logs').join('\n');
  const lines = logs.split('\n').length;
  const leaks = [...secrets].filter((s) => logs.includes(s));
  rmSync(root, { recursive: true, force: true });
  // A partial run (one unit test file) may record nothing; CI's full run must record plenty.
  if ((secrets.size === 0 || lines < 10) && process.env.STSTEST_REQUIRE_SCAN === '1') {
    throw new Error(
      `secret scan saw too little to prove anything: ${secrets.size} secrets, ${lines} output lines`,
    );
  }
  if (leaks.length > 0) {
    throw new Error(
      `secret scan: ${leaks.length} secret value(s) appeared in sidecar output (first 6 chars: ${leaks.map((l) => l.slice(0, 6)).join(', ')})`,
    );
  }
  console.info(`[secret-scan] ${secrets.size} secrets checked against ${lines} output lines: 0 found`);
}
