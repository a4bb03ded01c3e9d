// The real helm binary for the chart tests: found in the build cache of test/stack/helm.sh (or HELM_BIN),
// run with its own throw-away HOME dirs on copies of the charts (helm dependency build writes charts/ and
// Chart.lock, which must never land in the repository).
import { execFile } from 'node:child_process';
import { accessSync, constants, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { HELM_DIR, parseDocs, type JsonObject, type SourcedDoc } from './support.ts';

/** The helm version test/stack/helm.sh builds by default (keep in step with it). */
export const HELM_VERSION = 'v3.22.0';

function cachedHelm(): string {
  const root = process.env.STS_CACHE_DIR ?? join(homedir(), '.cache', 'sts-sidecar');
  return join(root, `helm-${HELM_VERSION}`, 'helm');
}

/** Path of the helm binary, or the one-line reason there is none. */
export function findHelm(): { bin: string } | { reason: string } {
  const bin = process.env.HELM_BIN ?? cachedHelm();
  try {
    accessSync(bin, constants.X_OK);
    return { bin };
  } catch {
    return { reason: `no helm binary at ${bin} (build it: bash test/stack/helm.sh install)` };
  }
}

const found = findHelm();
/** Why the helm tests cannot run here, or undefined when they can. */
export const helmSkipReason: string | undefined = 'reason' in found ? found.reason : undefined;
/** CI sets STSTEST_REQUIRE_HELM=1: then a missing helm fails the run instead of skipping it. */
export const requireHelm = process.env.STSTEST_REQUIRE_HELM === '1';
export const skipHelm = helmSkipReason !== undefined && !requireHelm;

export function helmGate(file: string): string {
  if (skipHelm) console.warn(`[${file}] skipped: ${helmSkipReason}`);
  return helmSkipReason ? ` (helm unavailable: ${helmSkipReason})` : '';
}

export interface HelmResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A scratch copy of helm/ plus private helm HOME dirs; dispose() removes all of it. */
export interface HelmWorkspace {
  readonly helmDir: string;
  run(args: readonly string[]): Promise<HelmResult>;
  /** Writes a values file into the workspace and returns its path. */
  valuesFile(name: string, values: JsonObject): string;
  dispose(): void;
}

export async function helmWorkspace(): Promise<HelmWorkspace> {
  if ('reason' in found) throw new Error(`STSTEST_REQUIRE_HELM=1 but ${found.reason}`);
  const bin = found.bin;
  const root = mkdtempSync(join(tmpdir(), 'sts-helm-'));
  const helmDir = join(root, 'helm');
  cpSync(HELM_DIR, helmDir, {
    recursive: true,
    filter: (src) => !/\/charts(\/|$)|Chart\.lock$/.test(src.slice(HELM_DIR.length)),
  });
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: root,
    HELM_CACHE_HOME: join(root, 'cache'),
    HELM_CONFIG_HOME: join(root, 'config'),
    HELM_DATA_HOME: join(root, 'data'),
  };
  const run = (args: readonly string[]): Promise<HelmResult> =>
    new Promise((resolve) => {
      execFile(
        bin,
        [...args],
        { env, cwd: root, timeout: 60_000, maxBuffer: 16 << 20 },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });
  // example-app's dependency (file://../sts-sidecar) packaged into its charts/ of the copy.
  const dep = await run(['dependency', 'build', join(helmDir, 'example-app'), '--skip-refresh']);
  if (dep.code !== 0) throw new Error(`helm dependency build failed: ${dep.stderr}`);
  return {
    helmDir,
    run,
    valuesFile(name, values) {
      const file = join(root, `${name.replace(/[^A-Za-z0-9_.-]/g, '_')}.values.yaml`);
      writeFileSync(file, stringify(values));
      return file;
    },
    dispose() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Documents of a `helm template` output (sources named after helm's "# Source:" comments). */
export function renderedDocs(stdout: string, label: string): SourcedDoc[] {
  const out: SourcedDoc[] = [];
  for (const part of stdout.split(/^---\s*$/m)) {
    const source = /^# Source: (.+)$/m.exec(part)?.[1] ?? 'unknown';
    for (const d of parseDocs(part, `${label}:${source}`)) out.push(d);
  }
  return out;
}
