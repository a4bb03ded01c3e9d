/**
 * TypeScript side of the SeaweedFS test stack (test/stack/seaweedfs.sh): is `weed` built, start/stop the
 * stack, read its coordinates, mint tokens with the stack issuer's key, S3 clients and bucket creation
 * (with the stack's static admin identity: SeaweedFS 4.44 denies CreateBucket to federated sessions).
 */
import { runCommand } from './stack-script.ts';
import { ensureStackBucket, stackS3Client } from './s3-client.ts';
import { accessSync, constants as fsConstants, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { S3Client } from '@aws-sdk/client-s3';
import { mintWithIssuerKey, readIssuerKey, type IssuerKey } from './issuer-key.ts';
import { z } from 'zod';

const here = dirname(fileURLToPath(import.meta.url));
const SCRIPT = join(here, 'seaweedfs.sh');
const REPO_ROOT = resolve(here, '..', '..');
export const SEAWEEDFS_STACK_DIR = join(REPO_ROOT, '.stack', 'seaweedfs');

/** The seaweedfs version test/stack/seaweedfs/go.mod pins (the cache key of the built binary). */
export function weedVersion(): string {
  const mod = readFileSync(join(here, 'seaweedfs', 'go.mod'), 'utf8');
  const m = /github\.com\/seaweedfs\/seaweedfs (v\S+)/.exec(mod);
  if (!m?.[1]) throw new Error('test/stack/seaweedfs/go.mod does not require github.com/seaweedfs/seaweedfs');
  return m[1];
}

export function weedBinary(): string {
  const root = process.env.WEED_CACHE_DIR ?? join(homedir(), '.cache', 'sts-sidecar');
  return join(root, `weed-${weedVersion()}`, 'weed');
}

export function seaweedfsUsable(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux')
    return { ok: false, reason: `SeaweedFS stack needs Linux (${process.platform})` };
  try {
    accessSync(weedBinary(), fsConstants.X_OK);
  } catch {
    return {
      ok: false,
      reason: `weed ${weedVersion()} not built; run bash test/stack/seaweedfs.sh install`,
    };
  }
  return { ok: true };
}

export interface SeaweedfsStack {
  endpoint: string;
  region: string;
  roleArn: string;
  issuerUrl: string;
  outageIssuerUrl: string;
  outageIssuerPort: number;
  audience: string;
  version: string;
  admin: { accessKeyId: string; secretAccessKey: string };
  issuerKey: IssuerKey;
}

const EnvJson = z.object({
  endpoint: z.string(),
  region: z.string(),
  roleArn: z.string(),
  issuerUrl: z.string(),
  outageIssuerUrl: z.string(),
  outageIssuerPort: z.number(),
  audience: z.string(),
  issuerKeyFile: z.string(),
  version: z.string(),
  accessKeyId: z.string(),
  secretAccessKey: z.string(),
});

export async function readSeaweedfsStack(stackDir = SEAWEEDFS_STACK_DIR): Promise<SeaweedfsStack> {
  const e = EnvJson.parse(JSON.parse(await readFile(join(stackDir, 'env.json'), 'utf8')));
  const issuerKey = await readIssuerKey(e.issuerKeyFile);
  return {
    endpoint: e.endpoint,
    region: e.region,
    roleArn: e.roleArn,
    issuerUrl: e.issuerUrl,
    outageIssuerUrl: e.outageIssuerUrl,
    outageIssuerPort: e.outageIssuerPort,
    audience: e.audience,
    version: e.version,
    admin: { accessKeyId: e.accessKeyId, secretAccessKey: e.secretAccessKey },
    issuerKey,
  };
}

const runScript = (command: string, timeoutMs: number) =>
  runCommand('bash', [SCRIPT, command], {
    env: { ...process.env, STACK_DIR: SEAWEEDFS_STACK_DIR },
    timeoutMs,
  });

export async function isSeaweedfsUp(): Promise<boolean> {
  return runScript('status', 15_000).then(
    () => true,
    () => false,
  );
}

/** `seaweedfs.sh up` (idempotent, serialized by a lock file); returns the stack's coordinates. */
export async function ensureSeaweedfs(): Promise<SeaweedfsStack> {
  const usable = seaweedfsUsable();
  if (!usable.ok) throw new Error(usable.reason);
  const { stderr } = await runScript('up', 180_000);
  if (!stderr.includes('already up') && stderr.trim() !== '') process.stderr.write(stderr);
  return readSeaweedfsStack();
}

export async function stopSeaweedfs(): Promise<void> {
  await runScript('down', 60_000);
}

/** Mints a token from the stack's issuer (kid in the header, as SeaweedFS requires). */
export async function mintSeaweedfsToken(
  stack: SeaweedfsStack,
  claims: { sub: string; aud: string | string[]; [k: string]: unknown },
  opts?: { ttlSeconds?: number },
): Promise<string> {
  return mintWithIssuerKey(stack.issuerUrl, stack.issuerKey, claims, opts);
}

/** An S3 client for the stack (see stackS3Client). */
export const seaweedfsS3Client: (
  stack: SeaweedfsStack,
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
) => S3Client = stackS3Client;

/** Creates the bucket as the stack's admin; a bucket that exists already is fine. */
export const ensureSeaweedfsBucket: (stack: SeaweedfsStack, bucket: string) => Promise<void> =
  ensureStackBucket;
