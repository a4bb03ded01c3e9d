/**
 * test/stack/seaweedfs.sh's guards, on a scratch STACK_DIR (no weed is started): `up` must not tear down a
 * stack whose processes are alive but slow to answer, and must refuse a port someone else listens on.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { weedVersion } from './seaweedfs.ts';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'seaweedfs.sh');

function runScript(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', [SCRIPT, ...args], { env: { ...process.env, ...env } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

/** A long sleep whose command line names it `name` (what seaweedfs.sh's pidfile check looks for). */
function fakeProcess(name: string): ChildProcess {
  return spawn('bash', ['-c', `exec -a ${name} sleep 300`], { stdio: 'ignore' });
}

const alive = (p: ChildProcess): boolean => {
  try {
    process.kill(p.pid!, 0);
    return p.exitCode === null && p.signalCode === null;
  } catch {
    return false;
  }
};

/** A port nothing listens on (taken from the kernel, then released). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe.skipIf(process.platform !== 'linux')('seaweedfs.sh up guards', () => {
  let dir: string;
  const started: ChildProcess[] = [];
  const servers: Server[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'seaweedfs-script-'));
  });
  afterEach(async () => {
    for (const p of started.splice(0)) p.kill('SIGKILL');
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps a stack whose processes are alive but do not answer: gives up without stopping them', async () => {
    const stackDir = join(dir, 'stack');
    await mkdir(join(stackDir, 'run'), { recursive: true });
    const weed = fakeProcess('weed');
    const issuer = fakeProcess('seaweedfs-issuer.ts');
    started.push(weed, issuer);
    await writeFile(join(stackDir, 'run', 'weed.pid'), `${weed.pid}\n`);
    await writeFile(join(stackDir, 'run', 'issuer.pid'), `${issuer.pid}\n`);
    await writeFile(join(stackDir, 'env.json'), '{}');
    const [s3, issuerPort] = [await freePort(), await freePort()];
    const res = await runScript(['up'], {
      STACK_DIR: stackDir,
      SEAWEEDFS_S3_PORT: String(s3),
      SEAWEEDFS_ISSUER_PORT: String(issuerPort),
      SEAWEEDFS_UP_PROBE_RETRY_S: '2',
    });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('not restarting them');
    expect(alive(weed)).toBe(true);
    expect(alive(issuer)).toBe(true);
  }, 30_000);

  it('refuses to start when one of its ports is taken by another process', async () => {
    const taken = createServer();
    servers.push(taken);
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    const cache = join(dir, 'cache');
    await mkdir(join(cache, `weed-${weedVersion()}`), { recursive: true });
    await writeFile(join(cache, `weed-${weedVersion()}`, 'weed'), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
    const res = await runScript(['up'], {
      STACK_DIR: join(dir, 'stack'),
      SEAWEEDFS_ISSUER_PORT: String(port),
      // The binary check comes first: a stand-in executable gets past it (it is never run).
      WEED_CACHE_DIR: cache,
    });
    expect(res.stderr).toContain(`port ${port} (for issuer) is already in use`);
    expect(res.code).not.toBe(0);
  }, 30_000);
});
