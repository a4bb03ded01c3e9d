/**
 * TypeScript side of the MinIO test stack (test/stack/minio.sh): is `minio` built, start/stop the stack
 * (its two instances: role-policy mode and claim mode), read its coordinates, mint tokens with the stack
 * issuer's key, and start a MinIO of a test's own (an issuer the test controls, or no client secret)
 * through the same script with another state dir and port base.
 */
import { runCommand } from './stack-script.ts';
import { ensureStackBucket, stackS3Client } from './s3-client.ts';
import { accessSync, constants as fsConstants } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { S3Client } from '@aws-sdk/client-s3';
import { mintWithIssuerKey, readIssuerKey, type IssuerKey } from './issuer-key.ts';
import { z } from 'zod';

const here = dirname(fileURLToPath(import.meta.url));
const SCRIPT = join(here, 'minio.sh');
const REPO_ROOT = resolve(here, '..', '..');
export const MINIO_STACK_DIR = join(REPO_ROOT, '.stack', 'minio');

/** The MinIO server module version test/stack/minio.sh builds (the cache key of the binary). */
export const MINIO_VERSION = 'v0.0.0-20260212201848-7aac2a2c5b7c';

/** MinIO's two OpenID policy modes (docs/backends.md). */
export type MinioMode = 'role' | 'claim';

export function minioBinary(): string {
  const root = process.env.MINIO_CACHE_DIR ?? join(homedir(), '.cache', 'sts-sidecar');
  return join(root, `minio-${MINIO_VERSION}`, 'minio');
}

/** The stack's port base (MINIO_PORT_BASE, default 18900): issuer, role instance, claim instance. */
export function minioPortBase(): number {
  return Number(process.env.MINIO_PORT_BASE ?? 18900);
}

export function minioUsable(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux')
    return { ok: false, reason: `MinIO stack needs Linux (${process.platform})` };
  try {
    accessSync(minioBinary(), fsConstants.X_OK);
  } catch {
    return { ok: false, reason: `minio ${MINIO_VERSION} not built; run bash test/stack/minio.sh install` };
  }
  return { ok: true };
}

export interface MinioStack {
  /** S3 + STS endpoint of the role-policy instance. */
  roleEndpoint: string;
  /** S3 + STS endpoint of the claim-mode instance. */
  claimEndpoint: string;
  region: string;
  /** The role ARN MinIO derives from the client id (role-policy mode). */
  roleArn: string;
  /** The MinIO policy the role maps to, and what claim-mode tokens name in `policy`. */
  rolePolicy: string;
  issuerUrl: string;
  /** Client id: the `aud` (or `azp`) MinIO requires. */
  clientId: string;
  /** MINIO_IDENTITY_OPENID_CLIENT_SECRET ('' when the instance runs without one). */
  clientSecret: string;
  version: string;
  binary: string;
  stackDir: string;
  admin: { accessKeyId: string; secretAccessKey: string };
  /** Undefined when the stack runs with a test's own issuer (MINIO_ISSUER_URL). */
  issuerKey: IssuerKey | undefined;
}

const EnvJson = z.object({
  roleEndpoint: z.string(),
  claimEndpoint: z.string(),
  region: z.string(),
  roleArn: z.string(),
  rolePolicy: z.string(),
  issuerUrl: z.string(),
  clientId: z.string(),
  clientSecret: z.string(),
  issuerKeyFile: z.string(),
  version: z.string(),
  binary: z.string(),
  accessKeyId: z.string(),
  secretAccessKey: z.string(),
  stackDir: z.string(),
});

export async function readMinioStack(stackDir = MINIO_STACK_DIR): Promise<MinioStack> {
  const e = EnvJson.parse(JSON.parse(await readFile(join(stackDir, 'env.json'), 'utf8')));
  const issuerKey = await readIssuerKey(e.issuerKeyFile).catch(() => undefined);
  return {
    roleEndpoint: e.roleEndpoint,
    claimEndpoint: e.claimEndpoint,
    region: e.region,
    roleArn: e.roleArn,
    rolePolicy: e.rolePolicy,
    issuerUrl: e.issuerUrl,
    clientId: e.clientId,
    clientSecret: e.clientSecret,
    version: e.version,
    binary: e.binary,
    stackDir: e.stackDir,
    admin: { accessKeyId: e.accessKeyId, secretAccessKey: e.secretAccessKey },
    issuerKey,
  };
}

const runScript = (command: string, timeoutMs: number, env: NodeJS.ProcessEnv = {}) =>
  runCommand('bash', [SCRIPT, command], {
    env: { ...process.env, STACK_DIR: MINIO_STACK_DIR, ...env },
    timeoutMs,
  });

export async function isMinioUp(): Promise<boolean> {
  return runScript('status', 15_000).then(
    () => true,
    () => false,
  );
}

/** `minio.sh up` (idempotent, serialized by a lock file); returns the stack's coordinates. */
export async function ensureMinio(): Promise<MinioStack> {
  const usable = minioUsable();
  if (!usable.ok) throw new Error(usable.reason);
  const { stderr } = await runScript('up', 180_000);
  if (!stderr.includes('already up') && stderr.trim() !== '') process.stderr.write(stderr);
  return readMinioStack();
}

export async function stopMinio(): Promise<void> {
  await runScript('down', 60_000);
}

/** A MinIO instance a test starts for itself (its own state dir and ports); stop() removes it. */
export interface OwnMinio {
  readonly stack: MinioStack;
  /** The instance's S3 + STS endpoint. */
  readonly endpoint: string;
  stop(): Promise<void>;
}

/**
 * Starts one MinIO instance through minio.sh with the test's own issuer URL, on MINIO_PORT_BASE + offset
 * (the stack leaves base+5..base+9 to tests; its mode port is base+offset+1 or +2).
 */
export async function startOwnMinio(options: {
  mode: MinioMode;
  issuerUrl: string;
  /** Added to MINIO_PORT_BASE for the script's base: 5 puts the role instance on base+6. */
  portOffset: number;
  /** Start without MINIO_IDENTITY_OPENID_CLIENT_SECRET (the security case only). */
  withoutClientSecret?: boolean;
  /** Wait for S3 only (the issuer is down on purpose). */
  waitForSts?: boolean;
}): Promise<OwnMinio> {
  const usable = minioUsable();
  if (!usable.ok) throw new Error(usable.reason);
  const stackDir = await mkdtemp(join(tmpdir(), 'minio-own-'));
  await rm(stackDir, { recursive: true });
  const env = {
    STACK_DIR: stackDir,
    MINIO_PORT_BASE: String(minioPortBase() + options.portOffset),
    MINIO_MODES: options.mode,
    MINIO_ISSUER_URL: options.issuerUrl,
    MINIO_CLIENT_SECRET_UNSET: options.withoutClientSecret ? '1' : '0',
    MINIO_WAIT_STS: options.waitForSts === false ? '0' : '1',
  };
  await runScript('up', 120_000, env);
  const stack = await readMinioStack(stackDir);
  return {
    stack,
    endpoint: options.mode === 'role' ? stack.roleEndpoint : stack.claimEndpoint,
    stop: async () => {
      await runScript('down', 60_000, env);
    },
  };
}

/** Mints a token from the stack's issuer (kid in the header; `aud` defaults to the client id). */
export async function mintMinioToken(
  stack: MinioStack,
  claims: { sub: string; aud?: string | string[]; [k: string]: unknown },
  opts?: { ttlSeconds?: number },
): Promise<string> {
  if (!stack.issuerKey) throw new Error('this MinIO stack uses an issuer of the test; mint with it');
  return mintWithIssuerKey(stack.issuerUrl, stack.issuerKey, { aud: stack.clientId, ...claims }, opts);
}

/** The S3 target of one instance: its endpoint and the root credentials. */
export function minioTarget(
  stack: MinioStack,
  mode: MinioMode,
): { endpoint: string; region: string; admin: MinioStack['admin'] } {
  return {
    endpoint: mode === 'role' ? stack.roleEndpoint : stack.claimEndpoint,
    region: stack.region,
    admin: stack.admin,
  };
}

/** An S3 client on one instance (see stackS3Client). */
export function minioS3Client(
  stack: MinioStack,
  mode: MinioMode,
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
): S3Client {
  return stackS3Client(minioTarget(stack, mode), credentials);
}

/** Creates the bucket on one instance as root; a bucket that exists already is fine. */
export async function ensureMinioBucket(stack: MinioStack, mode: MinioMode, bucket: string): Promise<void> {
  await ensureStackBucket(minioTarget(stack, mode), bucket);
}
