/**
 * test/stack/minio.sh's promise that MinIO listens on 127.0.0.1 only: MinIO on its own adds a listener on
 * every loopback address ([::1] too) whatever --address says; the script keeps [::1]:<port> bound while
 * MinIO starts (so that listener fails) and turns the console off. Read from the kernel's socket table
 * (ss), for both instances of the running stack.
 */
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureMinio, minioUsable, type MinioStack } from './minio.ts';

const usable = minioUsable();
const reason = 'reason' in usable ? usable.reason : undefined;
const required = process.env.STSTEST_REQUIRE_MINIO === '1';
if (reason && !required) console.warn(`[minio-script] skipped: ${reason}`);

/** Listening TCP sockets of a PID: local address:port, from `ss -ltnpH`. */
function listeningSockets(pid: number): string[] {
  const out = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.includes(`pid=${pid},`))
    .map((l) => l.trim().split(/\s+/)[3]!);
}

/** Resolves to the connect error code, or 'connected'. */
function tryConnect(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host, port, timeout: 2000 });
    s.on('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    s.on('timeout', () => {
      s.destroy();
      resolve('timeout');
    });
  });
}

describe.skipIf(reason !== undefined && !required)(
  `minio.sh: loopback IPv4 only${reason ? ` (${reason})` : ''}`,
  () => {
    let stack: MinioStack;
    beforeAll(async () => {
      if (reason) throw new Error(`STSTEST_REQUIRE_MINIO=1 but MinIO is unusable: ${reason}`);
      stack = await ensureMinio();
    });

    it.each(['role', 'claim'] as const)(
      'the %s instance listens on exactly 127.0.0.1:<port>, not on [::1]',
      async (mode) => {
        const port = Number(new URL(mode === 'role' ? stack.roleEndpoint : stack.claimEndpoint).port);
        const pid = Number((await readFile(join(stack.stackDir, 'run', `minio-${mode}.pid`), 'utf8')).trim());
        expect(listeningSockets(pid)).toEqual([`127.0.0.1:${port}`]);
        expect(await tryConnect('127.0.0.1', port)).toBe('connected');
        expect(['ECONNREFUSED', 'EADDRNOTAVAIL', 'ENETUNREACH']).toContain(await tryConnect('::1', port));
      },
    );
  },
);
