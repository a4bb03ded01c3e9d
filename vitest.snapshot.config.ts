import { defineConfig } from 'vitest/config';
import base from './vitest.config.ts';

/**
 * The process-level suites a second time, with the sidecar started the way the image's ENTRYPOINT starts
 * it: the fast start (`node dist/sts-sidecar.cjs <command>`, the CommonJS bundle with its V8 code cache)
 * instead of the plain bundle (STSTEST_LAUNCHER=snapshot runs them from the startup snapshot instead): every command (cli), signals and the token watch and the health endpoints (sidecar),
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
    env: { STSTEST_LAUNCHER: 'fast' },
  },
});
