/**
 * What the test-stack modules (ceph-rgw.ts, keycloak.ts, seaweedfs.ts) share: running a command (their
 * stack script, or an admin tool) with a deadline, and the vitest globalSetup that brings a stack up once
 * per run.
 */
import { execFile } from 'node:child_process';
import { basename } from 'node:path';

export interface ExecResult {
  stdout: string;
  stderr: string;
}

/**
 * Runs `file args...` to completion. A failure rejects with the command, the exit and the last lines of
 * stderr (the stack scripts say there what went wrong).
 */
export function runCommand(
  file: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<ExecResult> {
  return new Promise((resolvePromise, reject) => {
    execFile(
      file,
      args,
      { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          const tail = String(stderr).trim().split('\n').slice(-15).join('\n');
          const name = file === 'bash' && args[0] ? basename(args[0]) : file;
          const rest = file === 'bash' && args[0] ? args.slice(1) : args;
          reject(new Error(`${name} ${rest.join(' ')} failed: ${err.message}\n${tail}`, { cause: err }));
        } else {
          resolvePromise({ stdout: String(stdout), stderr: String(stderr) });
        }
      },
    );
  });
}

/** A stack as its vitest globalSetup drives it. */
export interface StackLifecycle {
  /** Log prefix, e.g. rgw-global-setup. */
  readonly tag: string;
  /** How messages name it: "the Ceph RGW stack", "Keycloak". */
  readonly name: string;
  /** The variable that makes an unusable stack fail the run (CI), e.g. STSTEST_REQUIRE_RGW. */
  readonly requireVariable: string;
  /** The variable that keeps a stack this run started up after it, e.g. STSTEST_KEEP_RGW. */
  readonly keepVariable: string;
  usable(): { ok: true } | { ok: false; reason: string };
  isUp(): Promise<boolean>;
  /** Brings it up (idempotent); returns how to describe it ("RGW", "Keycloak 26.7.3") and where it is. */
  ensure(): Promise<{ label: string; at: string }>;
  stop(): Promise<void>;
}

/**
 * vitest globalSetup for a stack: brings it up once for the whole run (when usable) so test files only
 * find it running; with the require variable set an unusable stack fails the run. teardown() stops the
 * stack only if this setup started it, unless the keep variable is set.
 */
export function stackGlobalSetup(stack: StackLifecycle): {
  setup(): Promise<void>;
  teardown(): Promise<void>;
} {
  let startedHere = false;
  return {
    async setup() {
      const usable = stack.usable();
      if ('reason' in usable) {
        if (process.env[stack.requireVariable] === '1') {
          throw new Error(`${stack.requireVariable}=1 but ${stack.name} is unusable: ${usable.reason}`);
        }
        console.warn(`[${stack.tag}] ${stack.name.replace(/^the /, '')} not started: ${usable.reason}`);
        return;
      }
      const wasUp = await stack.isUp();
      const t0 = Date.now();
      const { label, at } = await stack.ensure();
      startedHere = !wasUp;
      console.info(
        `[${stack.tag}] ${label} ${wasUp ? 'already running' : `started in ${Date.now() - t0} ms`} at ${at}`,
      );
    },
    async teardown() {
      if (!startedHere || process.env[stack.keepVariable]) return;
      startedHere = false;
      await stack.stop();
    },
  };
}
