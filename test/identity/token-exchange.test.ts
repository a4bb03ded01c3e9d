// Issue 9, `token-exchange` mode (RFC 8693), against the token-exchange STAND-IN of the local stack
// (test/stack/token-exchange-stand-in.ts): Keycloak 26.4's standard token exchange does not accept an
// external subject token, and key-cape's API is not public. Real HTTP, real signatures, the real adapter.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpTransport } from '../../src/adapters/http-transport.ts';
import { IdpIdentityExchange } from '../../src/adapters/identity-exchange.ts';
import { checkToken } from '../../src/adapters/token-file.ts';
import { startOidcIssuer, type OidcIssuer } from '../stack/oidc-issuer.ts';
import { startTokenExchangeStandIn, type TokenExchangeStandIn } from '../stack/token-exchange-stand-in.ts';

const AUDIENCE = 'sts.sidecar.test';

describe('token-exchange mode against the RFC 8693 stand-in', () => {
  let sa: OidcIssuer;
  let idp: TokenExchangeStandIn;
  beforeAll(async () => {
    sa = await startOidcIssuer({ path: '/cluster-sa-issuer' });
    idp = await startTokenExchangeStandIn({
      subjectIssuerUrl: sa.url,
      audience: AUDIENCE,
      profiles: {
        'system:serviceaccount:team-a:app': {
          tenant: 'team-a',
          principal_type: 'workload',
          assurance: 'k8s-sa',
        },
      },
    });
  });
  afterAll(async () => {
    await idp?.close();
    await sa?.close();
  });

  const adapter = () =>
    new IdpIdentityExchange({
      mode: 'token-exchange',
      tokenUrl: idp.tokenUrl,
      clientId: undefined,
      audience: AUDIENCE,
      scope: undefined,
      tokenAudience: AUDIENCE,
      transport: createHttpTransport({ maxResponseBytes: 64 * 1024 }),
      timeoutMs: 5000,
      now: Date.now,
    });
  const workload = async (sub: string, aud: string) =>
    checkToken(await sa.mint({ sub, aud }), 'test', undefined, Date.now());

  it('trades a service-account token for an IAM Profile token carrying tenant, principal_type, assurance', async () => {
    const token = await adapter().exchange(
      await workload('system:serviceaccount:team-a:app', idp.issuer.url),
    );
    expect(token).toMatchObject({
      issuer: idp.issuer.url,
      subject: 'profile:system:serviceaccount:team-a:app',
      audience: [AUDIENCE],
      tenant: 'team-a',
      principalType: 'workload',
      assurance: 'k8s-sa',
    });
  });

  it('an unknown workload or a token for another audience is refused (invalid_grant, a deny)', async () => {
    for (const [sub, aud] of [
      ['system:serviceaccount:team-a:stranger', idp.issuer.url],
      ['system:serviceaccount:team-a:app', 'someone-else'],
    ] as const) {
      const err = await adapter()
        .exchange(await workload(sub, aud))
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_IDP_REFUSED', oauthError: 'invalid_grant' });
      expect((err as Error).message).not.toContain('profile for');
    }
  });
});
