/**
 * vitest globalSetup: brings the MinIO stack (test/stack/minio.sh: issuer, role-policy and claim-mode
 * instances) up once for the whole run when `minio` is built here. With STSTEST_REQUIRE_MINIO=1 an unusable
 * stack fails the run. teardown() stops the stack only if this setup started it, unless STSTEST_KEEP_MINIO
 * is set.
 */
import { ensureMinio, isMinioUp, minioUsable, stopMinio } from './minio.ts';
import { stackGlobalSetup } from './stack-script.ts';

export const { setup, teardown } = stackGlobalSetup({
  tag: 'minio-global-setup',
  name: 'the MinIO stack',
  requireVariable: 'STSTEST_REQUIRE_MINIO',
  keepVariable: 'STSTEST_KEEP_MINIO',
  usable: minioUsable,
  isUp: isMinioUp,
  ensure: async () => {
    const stack = await ensureMinio();
    return {
      label: `MinIO ${stack.version}`,
      at: `${stack.roleEndpoint} (role), ${stack.claimEndpoint} (claim)`,
    };
  },
  stop: stopMinio,
});
