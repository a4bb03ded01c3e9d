/**
 * Issue 9: the latency the identity exchange adds to `once`. Two stacks on the same Ceph RGW, measured
 * interleaved in one run: the direct path (projected token straight to flex-auth and RGW) and the
 * expanded path (projected token -> real Keycloak -> IAM Profile token -> flex-auth and RGW).
 */
import { mkdir, rm } from 'node:fs/promises';
import { startKeycloakStack } from '../test/stack/keycloak-stack.ts';
import { startLocalStack } from '../test/stack/local-stack.ts';
import { BUNDLE } from '../test/support/sidecar-process.ts';
import { baseEnv } from './cold-start.ts';
import { timeInterleaved, type Variant } from './spawn-timing.ts';

export const IDENTITY = {
  direct: 'once, direct (no exchange)',
  keycloak: 'once, Keycloak client-assertion exchange',
} as const;

export async function measureExchangeLatency(runs: number): Promise<Map<string, number[]>> {
  const SA = 'system:serviceaccount:team-a:bench';
  const direct = await startLocalStack({ sts: 'ceph-rgw' });
  try {
    const kc = await startKeycloakStack({
      clients: [{ serviceAccount: SA, clientId: 'bench', tenant: 'team-a', audience: 'sts.sidecar.test' }],
    });
    try {
      await kc.rotateToken(SA);
      const empty = async (dir: string) => {
        await rm(dir, { recursive: true, force: true });
        await mkdir(dir, { recursive: true });
      };
      const variant = (name: string, env: Record<string, string>, dir: string): Variant => ({
        name,
        command: process.execPath,
        args: [BUNDLE, 'once'],
        env: { ...baseEnv(), ...env, STS_SIDECAR_LOG_LEVEL: 'warn' },
        before: () => empty(dir),
      });
      return await timeInterleaved(
        [
          variant(IDENTITY.direct, direct.env, direct.outputDir),
          variant(IDENTITY.keycloak, kc.env, kc.outputDir),
        ],
        runs,
      );
    } finally {
      await kc.close();
    }
  } finally {
    await direct.close();
  }
}
