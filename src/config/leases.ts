import path from 'node:path';
import { z } from 'zod';
import {
  ACTION_GROUPS,
  absolutePath,
  bucketName,
  prefix,
  roleArn,
  sessionName,
  type ActionGroup,
  type LeaseSpec,
} from './schema.ts';

/**
 * Leases are bounded by the config file alone (metrics carry a `lease` label; its values must stay few), and
 * each one is a loop with its own refreshes: a pod needing more is asking for a coarser grant or a second pod.
 */
export const MAX_LEASES = 16;

/** The per-lease variables: with named leases each lease says them itself, so setting them as well is an error. */
export const PER_LEASE_VARIABLES = [
  'STS_SIDECAR_BUCKET',
  'STS_SIDECAR_PREFIX',
  'STS_SIDECAR_ACTIONS',
  'STS_SIDECAR_TTL_SECONDS',
] as const;

/** A DNS label: it becomes a directory name, a URL path segment, a profile name and a metric label value. */
export const leaseName = z
  .string()
  .regex(
    /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/,
    'must be a DNS label (lowercase letters, digits, -; 63 at most)',
  );

const leaseEntry = z.strictObject({
  name: leaseName,
  bucket: bucketName,
  prefix: prefix.default(''),
  // A list, or the environment variable's comma-separated form.
  actions: z
    .preprocess(
      (v) => (typeof v === 'string' ? v.split(',').map((a) => a.trim()) : v),
      z
        .array(z.enum(ACTION_GROUPS, 'each action must be one of read, write, list, delete'))
        .min(1, 'must name at least one of read, write, list, delete'),
    )
    .transform((a) => [...new Set(a)].sort() as ActionGroup[])
    .default(['list', 'read']),
  ttlSeconds: z
    .number('must be a whole number of seconds')
    .int('must be a whole number of seconds')
    .min(60, 'must be between 60 and 43200')
    .max(43200, 'must be between 60 and 43200')
    .default(3600),
  roleArn: roleArn.optional(),
  sessionName: sessionName.optional(),
  outputDir: absolutePath.optional(),
});

/** One named lease of the config file, as given (defaults applied, nothing derived yet). */
export type LeaseEntry = z.output<typeof leaseEntry>;

/**
 * Parses the config file's `leases` value. Each issue names the lease (its position, and its name when it has
 * one) and the key: `leases[1] (backup).bucket: must be a valid S3 bucket name`. Values are never echoed.
 */
export function parseLeaseEntries(value: unknown, file: string, issues: string[]): LeaseEntry[] | undefined {
  if (!Array.isArray(value) || value.length === 0) {
    issues.push(`leases: must be a non-empty list of leases in ${file}`);
    return undefined;
  }
  if (value.length > MAX_LEASES) {
    issues.push(`leases: at most ${MAX_LEASES} leases in ${file}`);
    return undefined;
  }
  const entries: LeaseEntry[] = [];
  value.forEach((raw: unknown, i) => {
    // A valid name is no secret, and it is how a reader finds the lease in the file.
    const name = (raw as { name?: unknown } | null)?.name;
    const where = `leases[${i}]${leaseName.safeParse(name).success ? ` (${String(name)})` : ''}`;
    const result = leaseEntry.safeParse(raw);
    if (!result.success) {
      for (const issue of result.error.issues) {
        const key = issue.path.length > 0 ? `.${issue.path.join('.')}` : '';
        const message =
          issue.code === 'unrecognized_keys'
            ? `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`
            : issue.code === 'invalid_type' && issue.path.length === 0
              ? 'must be an object'
              : issue.message;
        issues.push(`${where}${key}: ${message}`);
      }
      return;
    }
    entries.push(result.data);
  });
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.name)) issues.push(`leases (${e.name}).name: two leases have this name`);
    seen.add(e.name);
  }
  return entries;
}

/**
 * The named leases with the shared settings applied: STS_SIDECAR_ROLE_ARN and STS_SIDECAR_SESSION_NAME are
 * defaults a lease may override; the output directory defaults to `<STS_SIDECAR_OUTPUT_DIR>/<name>`; with the
 * Secret sink each lease writes its own Secret, `<STS_SIDECAR_SECRET_NAME>-<name>`.
 */
export function namedLeaseSpecs(
  entries: readonly LeaseEntry[],
  shared: {
    outputDir: string;
    roleArn: string | undefined;
    sessionName: string | undefined;
    secretName: string | undefined;
  },
): LeaseSpec[] {
  return entries.map((e) =>
    Object.freeze({
      name: e.name,
      bucket: e.bucket,
      prefix: e.prefix,
      actions: Object.freeze([...e.actions]),
      ttlSeconds: e.ttlSeconds,
      roleArn: e.roleArn ?? shared.roleArn,
      sessionName: e.sessionName ?? shared.sessionName,
      outputDir: e.outputDir ?? path.join(shared.outputDir, e.name),
      createOutputDir: e.outputDir === undefined,
      secretName: shared.secretName === undefined ? undefined : `${shared.secretName}-${e.name}`,
    }),
  );
}

/** Where a lease's issues are reported: `leases (name).key` for named leases, the variable otherwise. */
export function leaseKey(spec: Pick<LeaseSpec, 'name'>, key: string, variable: string): string {
  return spec.name === undefined ? variable : `leases (${spec.name}).${key}`;
}
