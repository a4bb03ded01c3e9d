import path from 'node:path';
import writeFileAtomic from 'write-file-atomic';

/** The file name the profile file gets in STS_SIDECAR_OUTPUT_DIR (named leases, directory sink). */
export const AWS_CONFIG_FILE_NAME = 'aws-config';

/** A lease as the profile file names it: the profile name and the directory of its credentials.json. */
export interface ProfileLease {
  readonly name: string;
  readonly outputDir: string;
}

/** A path as one argument to botocore's shlex split and to the JS SDK's shell: quoted unless plain. */
function shellWord(p: string): string {
  return /^[A-Za-z0-9/._-]+$/.test(p) ? p : `'${p.replace(/'/g, `'\\''`)}'`;
}

/**
 * An AWS shared config file with one profile per lease, each reading that lease's `credentials.json` through
 * `credential_process`: an app picks a lease by profile name (AWS_PROFILE, or the SDK's profile option) in
 * any SDK that reads the shared config. SDKs re-run the process when the set nears its Expiration.
 */
export function renderAwsConfig(leases: readonly ProfileLease[]): string {
  const profiles = leases.map(
    (l) =>
      `[profile ${l.name}]\ncredential_process = cat ${shellWord(path.join(l.outputDir, 'credentials.json'))}\n`,
  );
  return `# Written by sts-sidecar: one profile per lease (AWS_CONFIG_FILE=this file, AWS_PROFILE=<lease>).\n\n${profiles.join('\n')}`;
}

/**
 * Writes the profile file atomically (a reader sees the old file or the new one, never a torn one). Its
 * content follows from the configuration only, so it is written once at start.
 */
export async function writeAwsConfig(
  file: string,
  leases: readonly ProfileLease[],
  fileMode: number,
): Promise<void> {
  await writeFileAtomic(file, renderAwsConfig(leases), { mode: fileMode, fsync: true });
}
