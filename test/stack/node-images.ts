/**
 * The images of the real-pod tests, built without Docker as OCI archives and imported into the node's
 * containerd: the sidecar's (scripts/build-image.sh, by kube-node-global-setup.ts) and the apps'
 * (test/stack/app-images.sh): Python with aioboto3 (test/node/artifact_app.py), the AWS CLI of
 * examples/once-job.yaml, Node with the JS SDK (test/node/sdk-app.ts). Each built once per content.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { importImage, NODE_STACK_DIR } from './kube-node.ts';
import { runCommand } from './stack-script.ts';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The sidecar image as the node knows it (kube-node-global-setup.ts builds and imports it). */
export const SIDECAR_IMAGE = 'sts-test.local/sts-sidecar:e2e';

/**
 * Builds an app image with test/stack/app-images.sh once per content (the script and its helpers, the
 * inputs named, the image ENV) and imports it into the node's containerd; returns the image reference.
 */
async function appImage(
  kind: 'python' | 'awscli' | 'node',
  inputs: readonly string[],
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<string> {
  const envArgs = Object.entries(env)
    .sort(([a], [b]) => a.localeCompare(b))
    .flatMap(([k, v]) => ['--env', `${k}=${v}`]);
  // process.version: the Node image carries this very binary.
  const hash = createHash('sha256')
    .update(kind)
    .update(JSON.stringify([args, envArgs, process.version]));
  for (const f of [
    join(REPO_ROOT, 'test', 'stack', 'app-images.sh'),
    join(REPO_ROOT, 'scripts', 'rootfs.sh'),
    ...inputs,
  ])
    hash.update(readFileSync(f));
  const tag = hash.digest('hex').slice(0, 12);
  const name = `sts-test.local/${kind}-app:${tag}`;
  // Two suites of one file (describe.concurrent) may ask for the same image at once: one build, one import.
  let pending = building.get(name);
  if (!pending) {
    pending = buildAndImport(kind, name, join(NODE_STACK_DIR, 'images', `${kind}-app-${tag}.tar`), [
      ...args,
      ...envArgs,
    ]);
    building.set(name, pending);
    pending.catch(() => building.delete(name));
  }
  await pending;
  return name;
}

const building = new Map<string, Promise<void>>();

async function buildAndImport(
  kind: string,
  name: string,
  archive: string,
  args: readonly string[],
): Promise<void> {
  if (!existsSync(archive)) {
    await runCommand(
      'bash',
      [
        join(REPO_ROOT, 'test', 'stack', 'app-images.sh'),
        kind,
        `${archive}.${process.pid}.tmp`,
        name,
        ...args,
      ],
      { timeoutMs: 300_000 },
    );
    await runCommand('mv', [`${archive}.${process.pid}.tmp`, archive]);
  }
  await importImage(archive);
}

/**
 * The Python app image (test/node/artifact_app.py, the consumers' venv with aioboto3) with the given image
 * ENV (the app's own configuration, as a user's image carries it).
 */
export async function pythonAppImage(env: Record<string, string>): Promise<string> {
  const app = join(REPO_ROOT, 'test', 'node', 'artifact_app.py');
  return appImage(
    'python',
    [app, join(REPO_ROOT, 'test', 'consumers', 'python', 'requirements.txt')],
    [app],
    env,
  );
}

/** The AWS CLI image of examples/once-job.yaml's main container (AWS CLI v1 from PyPI, /bin/sh). */
export async function awsCliImage(): Promise<string> {
  return appImage('awscli', [join(REPO_ROOT, 'test', 'consumers', 'awscli', 'requirements.txt')], []);
}

/**
 * The Node app image (test/node/sdk-app.ts bundled with the JS SDK from the repository's lockfile, the Node
 * 24 binary) with the given image ENV.
 */
export async function nodeAppImage(env: Record<string, string>): Promise<string> {
  const app = join(REPO_ROOT, 'test', 'node', 'sdk-app.ts');
  return appImage('node', [app, join(REPO_ROOT, 'package-lock.json')], [app], env);
}
