/**
 * The images of the real-pod tests, built without Docker as OCI archives and imported into the node's
 * containerd: the sidecar's (scripts/build-image.sh, by kube-node-global-setup.ts) and the Python app's
 * (test/stack/app-images.sh with test/node/artifact_app.py and the consumers' venv).
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
 * Builds (once per content) and imports the Python app image with the given image ENV (the app's own
 * configuration, as a user's image carries it); returns the image reference.
 */
export async function pythonAppImage(env: Record<string, string>): Promise<string> {
  const app = join(REPO_ROOT, 'test', 'node', 'artifact_app.py');
  const envArgs = Object.entries(env)
    .sort(([a], [b]) => a.localeCompare(b))
    .flatMap(([k, v]) => ['--env', `${k}=${v}`]);
  const tag = createHash('sha256')
    .update(readFileSync(app))
    .update(JSON.stringify(envArgs))
    .digest('hex')
    .slice(0, 12);
  const name = `sts-test.local/python-app:${tag}`;
  const archive = join(NODE_STACK_DIR, 'images', `python-app-${tag}.tar`);
  if (!existsSync(archive)) {
    await runCommand(
      'bash',
      [
        join(REPO_ROOT, 'test', 'stack', 'app-images.sh'),
        'python',
        `${archive}.${process.pid}.tmp`,
        name,
        app,
        ...envArgs,
      ],
      { timeoutMs: 300_000 },
    );
    await runCommand('mv', [`${archive}.${process.pid}.tmp`, archive]);
  }
  await importImage(archive);
  return name;
}
