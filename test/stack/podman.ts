/**
 * TypeScript side of test/stack/podman.sh: podman's Docker-API service for testcontainers and the local
 * MinIO image it serves (test/minio/minio.test.ts).
 */
import { execFileSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { minioUsable } from './minio.ts';
import { runCommand } from './stack-script.ts';

const here = dirname(fileURLToPath(import.meta.url));
const SCRIPT = join(here, 'podman.sh');
export const PODMAN_STACK_DIR = join(resolve(here, '..', '..'), '.stack', 'podman');

/** What a test needs from the running service: the Docker API socket and the local MinIO image. */
export interface PodmanEnv {
  dockerHost: string;
  minioImage: string;
}

export function podmanUsable(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux')
    return { ok: false, reason: `podman stack needs Linux (${process.platform})` };
  try {
    execFileSync('podman', ['--version'], { stdio: 'ignore' });
  } catch {
    return { ok: false, reason: 'podman is not installed; run bash test/stack/podman.sh install' };
  }
  return minioUsable();
}

const runScript = (command: string, timeoutMs: number) =>
  runCommand('bash', [SCRIPT, command], {
    env: { ...process.env, STACK_DIR: PODMAN_STACK_DIR },
    timeoutMs,
  });

function parseEnv(stdout: string): PodmanEnv {
  const get = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(stdout)?.[1];
  const dockerHost = get('DOCKER_HOST');
  const minioImage = get('STSTEST_MINIO_LOCAL_IMAGE');
  if (!dockerHost || !minioImage)
    throw new Error(`podman.sh printed no DOCKER_HOST/STSTEST_MINIO_LOCAL_IMAGE`);
  return { dockerHost, minioImage };
}

/** The running service's env, or undefined when it is not up. */
export async function podmanEnv(): Promise<PodmanEnv | undefined> {
  return runScript('status', 15_000).then(
    (r) => parseEnv(r.stdout),
    () => undefined,
  );
}

export async function isPodmanUp(): Promise<boolean> {
  return (await podmanEnv()) !== undefined;
}

/** `podman.sh up` (idempotent): the service and the image. */
export async function ensurePodman(): Promise<PodmanEnv> {
  const usable = podmanUsable();
  if (!usable.ok) throw new Error(usable.reason);
  return parseEnv((await runScript('up', 300_000)).stdout);
}

export async function stopPodman(): Promise<void> {
  await runScript('down', 120_000);
}
