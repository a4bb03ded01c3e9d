/**
 * Benchmarks 1, 2 and the cold-start breakdown of 7: `once` against the real Ceph RGW, against a bare
 * `node -e 0` and against the aws CLI script users write today, all interleaved in the same run.
 */
import { access, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LocalStack } from '../test/stack/local-stack.ts';
import { BUNDLE, sidecarArgv } from '../test/support/sidecar-process.ts';
import { timeInterleaved, type Variant } from './spawn-timing.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const AWS_SCRIPT = path.join(HERE, 'aws-cli-exchange.sh');
export const AWS_CLI = '/usr/bin/aws';
/** The dependency-free floor of the same job (issue 21). */
export const FLOOR_SCRIPT = path.join(HERE, 'floor-exchange.mjs');
const SET = ['access-key', 'secret-key', 'session-token', 'expiration', 'credentials.json'] as const;

/** Only what a process needs; never the benchmark's own environment. */
export function baseEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', TZ: 'UTC' };
}

async function emptyDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
}

async function requireFiles(dir: string, names: readonly string[]): Promise<void> {
  for (const n of names) await access(path.join(dir, n));
}

export interface ColdStartResult {
  readonly samples: Map<string, number[]>;
  readonly runs: number;
}

export const COLD = {
  node: 'node -e 0',
  floor: 'dependency-free floor script (RGW)',
  version: 'bundle --version (load only)',
  checkConfig: 'bundle check-config (load + config)',
  once: 'sidecar once (RGW)',
  snapshotVersion: 'snapshot --version (load only)',
  snapshotOnce: 'snapshot once (RGW)',
  fastVersion: 'fast start --version (load only)',
  fastOnce: 'fast start once (RGW), image configuration',
  aws: 'aws CLI script (RGW)',
} as const;

/** The image's configuration (Dockerfile ENTRYPOINT and ENV) for the fast-start variants. */
export interface ImageStart {
  readonly nodeArgs: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

export async function measureColdStart(
  stack: LocalStack,
  runs: number,
  image: ImageStart,
  extraNodeArgs: readonly string[] = [],
): Promise<ColdStartResult> {
  if (!stack.rgw) throw new Error('cold start is measured against Ceph RGW');
  const node = process.execPath;
  const sidecarEnv = { ...baseEnv(), ...stack.env };
  const awsOut = path.join(stack.dir, 'aws-cli-out');
  await mkdir(awsOut, { recursive: true });
  const floorOut = path.join(stack.dir, 'floor-out');
  await mkdir(floorOut, { recursive: true });
  const variants: Variant[] = [
    { name: COLD.node, command: node, args: ['-e', '0'], env: baseEnv() },
    {
      name: COLD.floor,
      command: node,
      args: [FLOOR_SCRIPT],
      env: { ...sidecarEnv, STS_SIDECAR_OUTPUT_DIR: floorOut },
      before: () => emptyDir(floorOut),
      verify: () => requireFiles(floorOut, SET),
    },
    { name: COLD.version, command: node, args: [...extraNodeArgs, BUNDLE, '--version'], env: baseEnv() },
    {
      name: COLD.checkConfig,
      command: node,
      args: [...extraNodeArgs, BUNDLE, 'check-config'],
      env: sidecarEnv,
    },
    {
      name: COLD.once,
      command: node,
      args: [...extraNodeArgs, BUNDLE, 'once'],
      env: sidecarEnv,
      before: () => emptyDir(stack.outputDir),
      verify: () => requireFiles(stack.outputDir, SET),
    },
    {
      name: COLD.snapshotVersion,
      command: node,
      args: sidecarArgv(['--version'], extraNodeArgs, 'snapshot'),
      env: baseEnv(),
    },
    {
      name: COLD.snapshotOnce,
      command: node,
      args: sidecarArgv(['once'], extraNodeArgs, 'snapshot'),
      env: sidecarEnv,
      before: () => emptyDir(stack.outputDir),
      verify: () => requireFiles(stack.outputDir, SET),
    },
    {
      name: COLD.fastVersion,
      command: node,
      args: sidecarArgv(['--version'], image.nodeArgs, 'fast'),
      env: { ...baseEnv(), ...image.env },
    },
    {
      name: COLD.fastOnce,
      command: node,
      args: sidecarArgv(['once'], image.nodeArgs, 'fast'),
      env: { ...sidecarEnv, ...image.env },
      before: () => emptyDir(stack.outputDir),
      verify: () => requireFiles(stack.outputDir, SET),
    },
    {
      name: COLD.aws,
      command: 'bash',
      args: [AWS_SCRIPT],
      env: {
        ...baseEnv(),
        AWS_PAGER: '',
        AWS_CONFIG_FILE: '/dev/null',
        AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
        STS_ENDPOINT: stack.rgw.stack.endpoint,
        AWS_REGION: stack.rgw.stack.region,
        ROLE_ARN: stack.rgw.tenant.roleArn,
        TOKEN_FILE: stack.tokenFile,
        OUT_DIR: awsOut,
      },
      before: () => emptyDir(awsOut),
      verify: () => requireFiles(awsOut, ['access-key', 'secret-key', 'session-token', 'expiration']),
    },
  ];
  return { samples: await timeInterleaved(variants, runs), runs };
}
