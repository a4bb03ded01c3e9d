import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { AWS_CONFIG_FILE_NAME, writeAwsConfig } from '../adapters/aws-config-file.ts';
import type { Config } from '../config/schema.ts';
import { OutputError } from '../errors.ts';
import type { Part } from './run-group.ts';

/**
 * Named leases on the directory sink: creates each default lease directory (`<STS_SIDECAR_OUTPUT_DIR>/<name>`)
 * and writes the AWS shared config file with one profile per lease into STS_SIDECAR_OUTPUT_DIR. Before the
 * loops: their first write needs the directory, and an app may read the profile file as soon as it exists
 * (its credential_process then fails until the lease's first set is there, which SDKs retry).
 */
export function leaseFilesPart(config: Config): Part | undefined {
  const named = config.leases.filter((l) => l.name !== undefined);
  if (named.length === 0 || config.sink !== 'directory') return undefined;
  return {
    name: 'lease-files',
    start: async () => {
      try {
        for (const lease of named) {
          // One level only: the shared directory is the pod's volume, never created here.
          if (lease.createOutputDir) await mkdir(lease.outputDir, { mode: 0o755 }).catch(ignoreExisting);
        }
        await writeAwsConfig(
          path.join(config.outputDir, AWS_CONFIG_FILE_NAME),
          named.map((l) => ({ name: l.name!, outputDir: l.outputDir })),
          config.fileMode,
        );
      } catch (err) {
        throw new OutputError(
          'ERR_OUTPUT_DIR',
          `cannot prepare the lease directories or ${AWS_CONFIG_FILE_NAME} in ${config.outputDir} (${(err as NodeJS.ErrnoException).code ?? 'error'}) (STS_SIDECAR_OUTPUT_DIR)`,
          { cause: err },
        );
      }
    },
  };
}

function ignoreExisting(err: NodeJS.ErrnoException): void {
  if (err.code !== 'EEXIST') throw err;
}
