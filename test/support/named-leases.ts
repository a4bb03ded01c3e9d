/**
 * A local stack's sidecar environment with its single lease replaced by named leases (issue 19): the config
 * file is written into `dir`, and the per-lease variables leave the environment (both at once is an error).
 * Shared by the named-lease tests and the leases benchmark.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

/** One named lease as the config file takes it. */
export interface NamedLease {
  readonly name: string;
  readonly bucket: string;
  readonly prefix?: string;
  readonly actions?: string | readonly string[];
  readonly roleArn?: string | undefined;
}

export async function namedLeasesEnv(
  env: Readonly<Record<string, string>>,
  dir: string,
  leases: readonly NamedLease[],
): Promise<Record<string, string>> {
  const file = path.join(dir, 'leases.json');
  await writeFile(file, JSON.stringify({ leases }));
  const {
    STS_SIDECAR_BUCKET: _bucket,
    STS_SIDECAR_PREFIX: _prefix,
    STS_SIDECAR_ACTIONS: _actions,
    STS_SIDECAR_TTL_SECONDS: _ttl,
    ...shared
  } = env;
  return { ...shared, STS_SIDECAR_CONFIG_FILE: file };
}
