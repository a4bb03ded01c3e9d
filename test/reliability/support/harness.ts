/** Small helpers shared by the reliability tests (no product code, no vitest import). */
import { spawn, type ChildProcess } from 'node:child_process';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SidecarProcess } from '../../support/sidecar-process.ts';
import { recordSecret } from '../../support/secrets.ts';
import type { LocalStack } from '../../stack/local-stack.ts';
import { CREDENTIAL_FILES } from '../../../src/adapters/credential-dir.ts';

export const SUPPORT_DIR = path.dirname(fileURLToPath(import.meta.url));
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A node child running one of the .ts scripts beside this file, with its stdout split in lines. */
export interface ScriptProcess {
  readonly child: ChildProcess;
  readonly lines: string[];
  readonly stderr: () => string;
  waitForLine(predicate: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startScript(script: string, args: string[]): ScriptProcess {
  const child = spawn(process.execPath, ['--no-warnings', path.join(SUPPORT_DIR, script), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let partial = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    for (const w of waiters) w();
  });
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  let closed = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => {
      closed = true;
      for (const w of waiters) w();
      resolve({ code, signal });
    }),
  );
  const waitForLine = (predicate: (line: string) => boolean, timeoutMs = 30_000) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const hit = lines.find(predicate);
        if (hit !== undefined) {
          done();
          resolve(hit);
        } else if (closed) {
          done();
          reject(new Error(`${script} exited before the expected line; stderr: ${err.slice(-2000)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(`${script}: timed out waiting for a line; last lines: ${lines.slice(-3).join(' | ')}`),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  return { child, lines, stderr: () => err, waitForLine, exited };
}

/** Port of the daemon's health server, from its `sidecar.started` line (STS_SIDECAR_LISTEN=127.0.0.1:0). */
export async function healthPort(p: SidecarProcess): Promise<number> {
  const line = await p.waitForEvent('sidecar.started', 15_000);
  const listen = String(line.listen ?? '');
  const port = Number(listen.slice(listen.lastIndexOf(':') + 1));
  if (!Number.isInteger(port) || port <= 0) throw new Error(`no port in sidecar.started: ${listen}`);
  return port;
}

export function httpGet(
  port: number,
  urlPath: string,
  timeoutMs = 2000,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port, path: urlPath, agent: false, timeout: timeoutMs },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Index in `p.lines` of the first line at or after `from` matching, waiting for it. */
export async function nextEvent(
  p: SidecarProcess,
  events: readonly string[],
  from: number,
  timeoutMs = 15_000,
): Promise<{ line: SidecarProcess['lines'][number]; index: number }> {
  const line = await p.waitFor(
    (l) => events.includes(l.event ?? '') && p.lines.indexOf(l) >= from,
    timeoutMs,
    events.join('|'),
  );
  return { line, index: p.lines.indexOf(line) };
}

export function eventsOf(p: SidecarProcess, event: string, from = 0, to = Number.POSITIVE_INFINITY) {
  return p.lines.filter((l, i) => l.event === event && i >= from && i < to);
}

export function isAlive(p: SidecarProcess): boolean {
  return p.child.exitCode === null && p.child.signalCode === null;
}

/** Everything an observer can see in a credential directory, for before/after comparisons. */
export interface DirSnapshot {
  /** Entry name -> 'dir' | 'link:<target>' | 'file:<content>'. */
  readonly entries: Record<string, string>;
  /** Visible name -> content read through the link, or null when unreadable. */
  readonly visible: Record<string, string | null>;
}

export async function snapshotDir(dir: string): Promise<DirSnapshot> {
  const entries: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) {
    const p = path.join(dir, name);
    const st = await lstat(p);
    entries[name] = st.isSymbolicLink()
      ? `link:${await readlink(p)}`
      : st.isDirectory()
        ? 'dir'
        : `file:${await readFile(p, 'utf8')}`;
  }
  const visible: Record<string, string | null> = {};
  for (const name of CREDENTIAL_FILES) {
    visible[name] = await readFile(path.join(dir, name), 'utf8').catch(() => null);
  }
  return { entries, visible };
}

/** The visible credential names that resolve to a readable file. */
export function visibleNames(s: DirSnapshot): string[] {
  return Object.entries(s.visible)
    .filter(([, v]) => v !== null)
    .map(([k]) => k);
}

/**
 * A TCP proxy in front of a service, which a test can take down (connections refused, like a dead
 * port) and bring back on the same port.
 */
export interface TcpProxy {
  readonly port: number;
  readonly connections: number;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    connections++;
    const upstream = net.connect(targetPort, targetHost);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(0);
  const port = (server.address() as net.AddressInfo).port;
  const down = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
  return {
    port,
    get connections() {
      return connections;
    },
    down,
    async up() {
      for (let i = 0; ; i++) {
        try {
          if (!server.listening) await listen(port);
          return;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || i > 50) throw err;
          await sleep(50);
        }
      }
    },
    close: down,
  };
}

/** Polls `probe` every `everyMs` until stopped; returns the samples with their time. */
export function poller<T>(
  everyMs: number,
  probe: () => Promise<T>,
): { samples: { t: number; v: T }[]; stop(): Promise<void> } {
  const samples: { t: number; v: T }[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t = Date.now();
      samples.push({ t, v: await probe() });
      await sleep(everyMs);
    }
  })();
  return {
    samples,
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** Records every secret the stack's STS stand-in handed out, for the end-of-run secret scan. */
export function recordIssuedSecrets(stack: LocalStack | undefined): void {
  for (const c of stack?.standIn?.issued ?? []) {
    recordSecret(c.secretAccessKey);
    recordSecret(c.sessionToken);
  }
}

/** Runs the bundle as another user (setpriv), recording its output for the secret scan. */
export async function runBundleAs(
  uid: number,
  env: Record<string, string>,
  args: string[],
  timeoutMs = 30_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { sidecarArgv } = await import('../../support/sidecar-process.ts');
  const { recordOutput } = await import('../../support/secrets.ts');
  const child = spawn(
    'setpriv',
    [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, ...sidecarArgv(args)],
    {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/tmp', TZ: 'UTC', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    stdout += c;
    recordOutput(`as-${uid}`, c);
  });
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
    recordOutput(`as-${uid}-stderr`, c);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}
