import { defineConfig } from 'vitest/config';
import { STRESS_GLOB } from './vitest.config.ts';

export default defineConfig({
  test: {
    include: [STRESS_GLOB],
    globalSetup: ['test/support/secret-scan-global.ts', 'test/stack/rgw-global-setup.ts'],
    testTimeout: 900_000,
    hookTimeout: 300_000,
    pool: 'forks',
    maxWorkers: 1,
  },
});
