import type { Config, LeaseSpec } from './schema.ts';

/**
 * What `check-config` says about the chosen STS backend: the mode the sidecar assumes (MinIO) and the
 * warnings particular to the backend. Pure: derived from the parsed configuration only.
 */
export interface BackendNotes {
  /** MinIO only: which of MinIO's OpenID policy modes the configuration fits. */
  readonly mode?: 'minio-role-policy' | 'minio-claim';
  readonly warnings: readonly string[];
}

/** The role ARN MinIO derives for a role-policy provider (docs/backends.md). */
const MINIO_ROLE_ARN_SHAPE = 'arn:minio:iam:::role/<base64url(sha1(client id))>, printed by MinIO at start';

/** The lease fields the notes read; the first lease's name is undefined for the environment-only lease. */
type LeaseFields = Pick<LeaseSpec, 'name' | 'roleArn' | 'ttlSeconds'>;

/** `STS_SIDECAR_ROLE_ARN` for the environment-only lease, `leases[i] (name).roleArn` for a named one. */
function roleArnKey(lease: LeaseFields, index: number): string {
  return lease.name === undefined ? 'STS_SIDECAR_ROLE_ARN' : `leases[${index}] (${lease.name}).roleArn`;
}

export function backendNotes(
  config: Pick<Config, 'backend'> & { readonly leases: readonly LeaseFields[] },
): BackendNotes {
  const { leases } = config;
  if (config.backend === 'seaweedfs') {
    return {
      warnings: [
        `STS_SIDECAR_BACKEND is seaweedfs: SeaweedFS up to 4.44 ends every lease at the projected token's exp, so there the token's expirationSeconds bounds the lease (lease events then say capped_by_token_exp); project it for at least STS_SIDECAR_TTL_SECONDS (${Math.max(...leases.map((l) => l.ttlSeconds))}s)`,
      ],
    };
  }
  if (config.backend !== 'minio') return { warnings: [] };
  const withArn = leases.filter((l) => l.roleArn !== undefined);
  if (withArn.length === 0) {
    return {
      mode: 'minio-claim',
      warnings: [
        `STS_SIDECAR_ROLE_ARN is not set: assuming MinIO's claim mode (MINIO_IDENTITY_OPENID_CLAIM_NAME; the token's claim names the MinIO policy). MinIO's role-policy mode (MINIO_IDENTITY_OPENID_ROLE_POLICY, the recommended one) refuses every request without its role ARN (${MINIO_ROLE_ARN_SHAPE})`,
      ],
    };
  }
  const warnings: string[] = [];
  leases.forEach((lease, i) => {
    if (lease.roleArn === undefined) {
      warnings.push(
        `${roleArnKey(lease, i)} is not set while other leases set one: MinIO's role-policy mode refuses every request without its role ARN (${MINIO_ROLE_ARN_SHAPE})`,
      );
    } else if (!lease.roleArn.startsWith('arn:minio:iam:::role/')) {
      warnings.push(
        `${roleArnKey(lease, i)} is not a MinIO role ARN (${MINIO_ROLE_ARN_SHAPE}): MinIO's role-policy mode refuses it`,
      );
    }
  });
  return { mode: 'minio-role-policy', warnings };
}
