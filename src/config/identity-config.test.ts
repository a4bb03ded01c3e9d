import { describe, expect, it } from 'vitest';
import { describeConfig, loadConfig } from './load.ts';

const base = {
  STS_SIDECAR_TENANT: 'team-a',
  STS_SIDECAR_BUCKET: 'artifacts',
  STS_SIDECAR_FLEX_AUTH_URL: 'https://flex-auth.example/v1/decisions',
  STS_SIDECAR_STS_ENDPOINT: 'https://rgw.example',
};

describe('identity exchange configuration', () => {
  it('is off by default', () => {
    expect(loadConfig(base)).toMatchObject({ identityExchange: 'none', idpTokenUrl: undefined });
  });

  it.each(['client-assertion', 'token-exchange'])('%s needs STS_SIDECAR_IDP_TOKEN_URL (named)', (mode) => {
    expect(() => loadConfig({ ...base, STS_SIDECAR_IDENTITY_EXCHANGE: mode })).toThrow(
      /STS_SIDECAR_IDP_TOKEN_URL: required when STS_SIDECAR_IDENTITY_EXCHANGE is/,
    );
  });

  it('parses every setting and check-config shows them, the URL redacted', () => {
    const c = loadConfig({
      ...base,
      STS_SIDECAR_IDENTITY_EXCHANGE: 'token-exchange',
      STS_SIDECAR_IDP_TOKEN_URL: 'https://idp.example/token?sig=secret-value',
      STS_SIDECAR_IDP_CLIENT_ID: 'sts-sidecar',
      STS_SIDECAR_IDP_AUDIENCE: 'vending',
      STS_SIDECAR_IDP_SCOPE: 'openid tenant',
    });
    expect(c).toMatchObject({
      identityExchange: 'token-exchange',
      idpClientId: 'sts-sidecar',
      idpAudience: 'vending',
      idpScope: 'openid tenant',
    });
    const shown = describeConfig(c);
    expect(shown.STS_SIDECAR_IDP_TOKEN_URL).toBe('https://idp.example/token?REDACTED');
    expect(JSON.stringify(shown)).not.toContain('secret-value');
  });

  it('rejects bad values, naming the variable without echoing the value', () => {
    const err = (() => {
      try {
        loadConfig({
          ...base,
          STS_SIDECAR_IDENTITY_EXCHANGE: 'kerberos',
          STS_SIDECAR_IDP_TOKEN_URL: 'ftp://idp',
          STS_SIDECAR_IDP_SCOPE: 'a  b',
        });
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(err?.message).toMatch(/STS_SIDECAR_IDENTITY_EXCHANGE/);
    expect(err?.message).toMatch(/STS_SIDECAR_IDP_TOKEN_URL/);
    expect(err?.message).toMatch(/STS_SIDECAR_IDP_SCOPE/);
    expect(err?.message).not.toContain('kerberos');
  });
});
