/**
 * vitest globalSetup: brings Keycloak up once for the whole run (when its dist is installed) so test files
 * only find it running. With STSTEST_REQUIRE_KEYCLOAK=1 an unusable Keycloak fails the run. teardown()
 * stops it only if this setup started it, unless STSTEST_KEEP_KEYCLOAK is set.
 */
import { downKeycloak, ensureKeycloak, isKeycloakUp, keycloakUsable } from './keycloak.ts';
import { stackGlobalSetup } from './stack-script.ts';

export const { setup, teardown } = stackGlobalSetup({
  tag: 'keycloak-global-setup',
  name: 'Keycloak',
  requireVariable: 'STSTEST_REQUIRE_KEYCLOAK',
  keepVariable: 'STSTEST_KEEP_KEYCLOAK',
  usable: keycloakUsable,
  isUp: isKeycloakUp,
  ensure: async () => {
    const kc = await ensureKeycloak();
    return { label: `Keycloak ${kc.version}`, at: kc.url };
  },
  stop: downKeycloak,
});
