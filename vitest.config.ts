import { defineConfig } from 'vitest/config';

/** Long-running proofs (10,000 rotations, 500 kills) live in `npm run test:stress`. */
export const STRESS_GLOB = '**/*.stress.test.ts';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['**/node_modules/**', STRESS_GLOB],
    globalSetup: [
      // First, so its teardown runs last: it throws what the others' teardowns deferred.
      'test/support/teardown-errors.ts',
      'test/support/secret-scan-global.ts',
      'test/stack/rgw-global-setup.ts',
      'test/stack/keycloak-global-setup.ts',
      'test/stack/seaweedfs-global-setup.ts',
      'test/stack/minio-global-setup.ts',
      'test/stack/podman-global-setup.ts',
      'test/stack/kube-global-setup.ts',
      // After kube-global-setup: the node registers with its API server.
      'test/stack/kube-node-global-setup.ts',
    ],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two cores: more workers only make the process-level tests fight over CPU.
    maxWorkers: 2,
  },
});
