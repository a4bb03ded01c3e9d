/**
 * vitest globalSetup: brings Keycloak up once for the whole run (when its dist is installed) so test files
 * only find it running. With STSTEST_REQUIRE_KEYCLOAK=1 an unusable Keycloak fails the run. teardown()
 * stops it only if this setup started it, unless STSTEST_KEEP_KEYCLOAK is set.
 */
import { downKeycloak, ensureKeycloak, isKeycloakUp, keycloakUsable } from './keycloak.ts';

let startedHere = false;

export async function setup(): Promise<void> {
  const usable = keycloakUsable();
  if ('reason' in usable) {
    if (process.env.STSTEST_REQUIRE_KEYCLOAK === '1') {
      throw new Error(`STSTEST_REQUIRE_KEYCLOAK=1 but Keycloak is unusable: ${usable.reason}`);
    }
    console.warn(`[keycloak-global-setup] Keycloak not started: ${usable.reason}`);
    return;
  }
  const wasUp = await isKeycloakUp();
  const t0 = Date.now();
  const kc = await ensureKeycloak();
  startedHere = !wasUp;
  console.info(
    `[keycloak-global-setup] Keycloak ${kc.version} ${wasUp ? 'already running' : `started in ${Date.now() - t0} ms`} at ${kc.url}`,
  );
}

export async function teardown(): Promise<void> {
  if (!startedHere || process.env.STSTEST_KEEP_KEYCLOAK) return;
  startedHere = false;
  await downKeycloak();
}
