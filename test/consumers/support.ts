/**
 * Runs real consumers (Debian's python3 with boto3, and a JS SDK v3 process) with an explicit environment:
 * never the test runner's own (no stray AWS_* variables), secrets only through files and env, never argv.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const BOTO3_CONSUMER = path.join(here, 'boto3_consumer.py');
export const JS_CONSUMER = path.join(here, 'js_consumer.ts');
/** Debian's interpreter: a pyenv shim earlier on PATH would have no boto3. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

/** 60 s leases renewed every 12 s, retries within 2 s: several rotations inside one consumer run. */
export const MINUTE_LEASES_ENV: Readonly<Record<string, string>> = {
  STS_SIDECAR_TTL_SECONDS: '60',
  STS_SIDECAR_STS_MIN_DURATION_SECONDS: '60',
  STS_SIDECAR_READY_MARGIN_SECONDS: '10',
  STS_SIDECAR_REFRESH_FRACTION: '0.2',
  STS_SIDECAR_REFRESH_JITTER: '0',
  STS_SIDECAR_BACKOFF_INITIAL_SECONDS: '0.5',
  STS_SIDECAR_BACKOFF_MAX_SECONDS: '2',
};

export interface ConsumerResult {
  code: number | null;
  stdout: string;
  stderr: string;
  json: Record<string, unknown> | undefined;
}

export function boto3Available(): { ok: true } | { ok: false; reason: string } {
  if (!existsSync(SYSTEM_PYTHON)) return { ok: false, reason: `${SYSTEM_PYTHON} not found` };
  return { ok: true };
}

/** Runs one consumer program with exactly `env` (plus a minimal PATH and TZ); parses its last stdout line. */
export function runProcess(
  file: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs: number,
): Promise<ConsumerResult> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      {
        env: { PATH: '/usr/local/bin:/usr/bin:/bin', TZ: 'UTC', ...env },
        timeout: timeoutMs,
        maxBuffer: 4 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        let json: Record<string, unknown> | undefined;
        try {
          json = JSON.parse(String(stdout).trim().split('\n').pop() ?? '') as Record<string, unknown>;
        } catch {
          json = undefined;
        }
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr), json });
      },
    );
  });
}

/** boto3_consumer.py under Debian's python3. `env` must carry HOME (a scratch folder) and the CONSUMER_* settings. */
export function runBoto3(env: Record<string, string>, timeoutMs = 60_000): Promise<ConsumerResult> {
  return runProcess(SYSTEM_PYTHON, [BOTO3_CONSUMER], env, timeoutMs);
}

/** js_consumer.ts under this Node (type stripping), resolving @aws-sdk/client-s3 from the repository. */
export function runJsConsumer(env: Record<string, string>, timeoutMs = 30_000): Promise<ConsumerResult> {
  return runProcess(
    process.execPath,
    [JS_CONSUMER],
    { ...env, PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin` },
    timeoutMs,
  );
}

/** An AWS config file with one profile whose credentials come from `command`. */
export function awsConfig(profile: string, command: string): string {
  return `[profile ${profile}]\nregion = us-east-1\ncredential_process = ${command}\n`;
}
