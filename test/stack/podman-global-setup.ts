/**
 * vitest globalSetup: brings podman's Docker-API service (test/stack/podman.sh) up once for the run when
 * podman is installed and `minio` is built, for the testcontainers test (test/minio/minio.test.ts). With
 * STSTEST_REQUIRE_DOCKER=1 an unusable engine fails the run. teardown() stops it only if this setup started
 * it, unless STSTEST_KEEP_PODMAN is set.
 */
import { ensurePodman, isPodmanUp, podmanUsable, stopPodman } from './podman.ts';
import { stackGlobalSetup } from './stack-script.ts';

export const { setup, teardown } = stackGlobalSetup({
  tag: 'podman-global-setup',
  name: "podman's Docker-API service",
  requireVariable: 'STSTEST_REQUIRE_DOCKER',
  keepVariable: 'STSTEST_KEEP_PODMAN',
  usable: podmanUsable,
  isUp: isPodmanUp,
  ensure: async () => {
    const env = await ensurePodman();
    return { label: `podman (${env.minioImage})`, at: env.dockerHost };
  },
  stop: stopPodman,
});
