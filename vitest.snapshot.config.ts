import { defineConfig } from 'vitest/config';
import base from './vitest.config.ts';

/**
 * The process-level suites a second time, with the sidecar started from the startup snapshot
 * (`node --snapshot-blob dist/sts-sidecar.blob -- <command>`, the image's ENTRYPOINT) instead of the
 * plain bundle: every command (cli), signals and the token watch and the health endpoints (sidecar),
 * kills (crash), process hygiene (secrets), TLS, denies, outages with readiness, credential_process
 * through boto3 (consumers).
 */
export const SNAPSHOT_SUITES = [
  'test/integration/*.test.ts',
  'test/reliability/crash.test.ts',
  'test/reliability/secrets.test.ts',
  'test/reliability/tls.test.ts',
  'test/reliability/deny.test.ts',
  'test/reliability/outage-sts.test.ts',
  'test/conformance/consumers.test.ts',
];

export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: SNAPSHOT_SUITES,
    // None of these suites talks to Keycloak or runs pods on the node: do not start them a second time.
    globalSetup: (base.test?.globalSetup as string[]).filter(
      (g) => !g.includes('keycloak') && !g.includes('kube-node'),
    ),
    env: { STSTEST_LAUNCHER: 'snapshot' },
  },
});
