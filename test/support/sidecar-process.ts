/**
 * Runs the built sidecar (dist/sts-sidecar.mjs, the product) as a separate process with an explicit
 * environment, parses its JSON log lines, and records all its output for the secret scan.
 *
 * STSTEST_LAUNCHER=snapshot runs it from the startup snapshot instead (`node --snapshot-blob
 * dist/sts-sidecar.blob -- <args>`, the image's ENTRYPOINT); vitest.snapshot.config.ts runs the
 * process-level suites that way.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { recordOutput } from './secrets.ts';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BUNDLE = path.join(REPO_ROOT, 'dist', 'sts-sidecar.mjs');
export const SNAPSHOT_BLOB = path.join(REPO_ROOT, 'dist', 'sts-sidecar.blob');
/** The fast start the image runs: the CommonJS bundle with its code cache (scripts/code-cache-loader.cjs). */
export const FAST_START = path.join(REPO_ROOT, 'dist', 'sts-sidecar.cjs');

export type Launcher = 'bundle' | 'snapshot' | 'fast';
const LAUNCHERS: readonly string[] = ['bundle', 'snapshot', 'fast'];

/** The launcher the tests use: the plain bundle unless STSTEST_LAUNCHER=snapshot or fast. */
export function defaultLauncher(): Launcher {
  const v = process.env.STSTEST_LAUNCHER ?? 'bundle';
  if (!LAUNCHERS.includes(v)) throw new Error(`STSTEST_LAUNCHER must be bundle, snapshot or fast, not ${v}`);
  return v as Launcher;
}

/** Node arguments that start the sidecar with `args`: the bundle, the startup snapshot or the fast start. */
export function sidecarArgv(
  args: readonly string[],
  nodeArgs: readonly string[] = [],
  launcher: Launcher = defaultLauncher(),
): string[] {
  return launcher === 'snapshot'
    ? // Without a script, anything that looks like an option would be Node's: `--` ends Node's options.
      [...nodeArgs, '--snapshot-blob', SNAPSHOT_BLOB, '--', ...args]
    : [...nodeArgs, launcher === 'fast' ? FAST_START : BUNDLE, ...args];
}

export interface LogLine {
  event?: string;
  level?: string;
  msg?: string;
  [key: string]: unknown;
}

export interface SidecarProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[];
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves with the first log line (new or past) matching; rejects after `timeoutMs`. */
  waitFor(predicate: (line: LogLine) => boolean, timeoutMs?: number, description?: string): Promise<LogLine>;
  waitForEvent(event: string, timeoutMs?: number, from?: number): Promise<LogLine>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

/** Only what the sidecar needs; never the test runner's own environment. */
function baseEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', TZ: 'UTC' };
}

export function startSidecar(
  env: Record<string, string>,
  args: string[] = ['run'],
  options: { label?: string; nodeArgs?: string[]; launcher?: Launcher } = {},
): SidecarProcess {
  const child = spawn(process.execPath, sidecarArgv(args, options.nodeArgs, options.launcher), {
    env: { ...baseEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const label = options.label ?? args.join('-');
  const lines: LogLine[] = [];
  let out = '';
  let err = '';
  let partial = '';
  const waiters = new Set<() => void>();
  let closed = false;
  // credential-process prints credentials on stdout by design; everything else it says goes to stderr.
  const stdoutIsCredentials = args[0] === 'credential-process';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    if (!stdoutIsCredentials) recordOutput(label, chunk);
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) {
      if (p.trim() === '') continue;
      try {
        lines.push(JSON.parse(p) as LogLine);
      } catch {
        lines.push({ msg: p });
      }
    }
    for (const w of waiters) w();
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
    recordOutput(`${label}-stderr`, chunk);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => {
      closed = true;
      for (const w of waiters) w();
      resolve({ code, signal });
    }),
  );
  const waitFor = (predicate: (line: LogLine) => boolean, timeoutMs = 15_000, description = 'log line') =>
    new Promise<LogLine>((resolve, reject) => {
      let seen = 0;
      const check = () => {
        for (; seen < lines.length; seen++) {
          const line = lines[seen]!;
          if (predicate(line)) {
            cleanup();
            resolve(line);
            return;
          }
        }
        if (closed) {
          cleanup();
          reject(
            new Error(
              `sidecar exited (${child.exitCode ?? child.signalCode}) before ${description}; stderr: ${err.slice(-2000)}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${description}; events so far: ${lines.map((l) => l.event).join(', ')}`,
          ),
        );
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  return {
    child,
    lines,
    stdout: () => out,
    stderr: () => err,
    waitFor,
    waitForEvent: (event, timeoutMs, from = 0) =>
      waitFor((l) => l.event === event && lines.indexOf(l) >= from, timeoutMs, `event ${event}`),
    exited,
    kill: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** Runs a one-shot command (once, credential-process, check-config) to completion. */
export async function runSidecarCommand(
  env: Record<string, string>,
  args: string[],
  timeoutMs = 30_000,
): Promise<{ code: number | null; stdout: string; stderr: string; lines: LogLine[] }> {
  const p = startSidecar(env, args);
  const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
  const { code } = await p.exited;
  clearTimeout(timer);
  return { code, stdout: p.stdout(), stderr: p.stderr(), lines: p.lines };
}
