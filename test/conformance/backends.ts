/**
 * The real STSs the conformance suite runs every case on: Ceph RGW (test/stack/ceph-rgw.sh), SeaweedFS
 * (test/stack/seaweedfs.sh) and MinIO (test/stack/minio.sh) in its role-policy mode; the files where MinIO's
 * claim mode behaves differently (the session policy, the refusals) also run `minio-claim`
 * ({@link BACKENDS_WITH_MINIO_CLAIM_MODE}). Each backend has its own gate: skipped with a one-line reason when its server
 * cannot run here, mandatory when CI sets its STSTEST_REQUIRE_* variable. A case one backend cannot
 * support is declared with `unsupported` and shows up as a skipped test whose title says why.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { it, type TestOptions } from 'vitest';
import { rgwS3Client, rgwUsable } from '../stack/ceph-rgw.ts';
import { startLocalStack, type LocalStack, type LocalStackOptions } from '../stack/local-stack.ts';
import { seaweedfsS3Client, seaweedfsUsable } from '../stack/seaweedfs.ts';
import { minioS3Client, minioUsable } from '../stack/minio.ts';
import type { DiskSet } from './support.ts';
import type { StsDialect } from '../../src/adapters/sts.ts';

export type BackendName = 'ceph-rgw' | 'seaweedfs' | 'minio' | 'minio-claim';

export interface ConformanceBackend {
  readonly name: BackendName;
  /** Why the backend's server cannot run here, or undefined. */
  readonly unusableReason: string | undefined;
  /** Skip the backend's describe block (unusable and not required). */
  readonly skip: boolean;
  /** Title suffix (the unusable reason) for the describe block; logs the skip once per file. */
  gate(file: string): string;
  /** First thing in beforeAll: an unusable required backend fails instead of skipping. */
  assertUsable(): void;
  start(options?: Omit<LocalStackOptions, 'sts'>): Promise<LocalStack>;
  /** An S3 client on the backend with the given credentials. */
  s3(stack: LocalStack, set: Pick<DiskSet, 'accessKeyId' | 'secretAccessKey' | 'sessionToken'>): S3Client;
  endpoint(stack: LocalStack): string;
}

function backend(
  name: BackendName,
  usable: { ok: true } | { ok: false; reason: string },
  requireVar: string,
  s3: ConformanceBackend['s3'],
  endpoint: ConformanceBackend['endpoint'],
): ConformanceBackend {
  const unusableReason = 'reason' in usable ? usable.reason : undefined;
  const required = process.env[requireVar] === '1';
  const skip = unusableReason !== undefined && !required;
  return {
    name,
    unusableReason,
    skip,
    gate(file) {
      if (skip) console.warn(`[${file}] ${name} skipped: ${unusableReason}`);
      return unusableReason ? ` (${name} unusable: ${unusableReason})` : '';
    },
    assertUsable() {
      if (unusableReason !== undefined)
        throw new Error(`${requireVar}=1 but the ${name} stack is unusable: ${unusableReason}`);
    },
    start: (options) => startLocalStack({ ...options, sts: name }),
    // Only the three keys: a DiskSet's string `expiration` would be taken for the SDK's Date.
    s3: (stack, set) =>
      s3(stack, {
        accessKeyId: set.accessKeyId,
        secretAccessKey: set.secretAccessKey,
        sessionToken: set.sessionToken,
      }),
    endpoint,
  };
}

export const BACKENDS: readonly ConformanceBackend[] = [
  backend(
    'ceph-rgw',
    rgwUsable(),
    'STSTEST_REQUIRE_RGW',
    (stack, set) => rgwS3Client(stack.rgw!.stack, set),
    (stack) => stack.rgw!.stack.endpoint,
  ),
  backend(
    'seaweedfs',
    seaweedfsUsable(),
    'STSTEST_REQUIRE_SEAWEEDFS',
    (stack, set) => seaweedfsS3Client(stack.seaweedfs!, set),
    (stack) => stack.seaweedfs!.endpoint,
  ),
  backend(
    'minio',
    minioUsable(),
    'STSTEST_REQUIRE_MINIO',
    (stack, set) => minioS3Client(stack.minio!.stack, 'role', set),
    (stack) => stack.minio!.endpoint,
  ),
];

/** MinIO's claim mode (the token's `policy` claim names the MinIO policy; no RoleArn is sent). */
export const MINIO_CLAIM_MODE: ConformanceBackend = backend(
  'minio-claim',
  minioUsable(),
  'STSTEST_REQUIRE_MINIO',
  (stack, set) => minioS3Client(stack.minio!.stack, 'claim', set),
  (stack) => stack.minio!.endpoint,
);

/** Every backend plus MinIO's claim mode, for the files where the two MinIO modes differ. */
export const BACKENDS_WITH_MINIO_CLAIM_MODE: readonly ConformanceBackend[] = [...BACKENDS, MINIO_CLAIM_MODE];

/** The STS_SIDECAR_BACKEND a conformance backend runs the sidecar with. */
export function sidecarBackend(name: BackendName): 'ceph-rgw' | 'seaweedfs' | 'minio' {
  return name === 'minio-claim' ? 'minio' : name;
}

/** The STS adapter dialect the sidecar picks for that backend (src/app.ts). */
export function dialectOf(name: BackendName): StsDialect {
  const backend = sidecarBackend(name);
  return backend === 'ceph-rgw' ? 'aws' : backend;
}

/**
 * `it` for one backend: a case listed as unsupported for it becomes `it.skip` with the reason in the
 * title, so a skip is never silent.
 */
export function caseFor(
  b: ConformanceBackend,
  unsupported: Partial<Record<BackendName, string>> = {},
): (title: string, options: TestOptions, fn: () => Promise<void>) => void {
  const reason = unsupported[b.name];
  return (title, options, fn) => {
    if (reason !== undefined) it.skip(`${title} [skipped on ${b.name}: ${reason}]`, options, fn);
    else it(title, options, fn);
  };
}
