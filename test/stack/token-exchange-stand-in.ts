/**
 * STAND-IN for a lightweight-mode IAM Profile issuer (key-cape, whose API is not public): an RFC 8693
 * token-exchange endpoint on loopback. Keycloak 26.4's standard token exchange only accepts tokens it issued
 * itself, so the sidecar's `token-exchange` mode is tested against this instead. It verifies the subject
 * token for real (signature against the service-account issuer's JWKS, issuer, audience = this endpoint's
 * issuer URL, expiry) and answers with a token signed by its own issuer (test/stack/oidc-issuer.ts), whose
 * claims come from a per-subject profile table. Unknown subjects and bad tokens get `invalid_grant`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { serveLoopback } from './loopback-server.ts';
import { startOidcIssuer, type OidcIssuer } from './oidc-issuer.ts';

export interface IamProfile {
  readonly tenant?: string;
  readonly principal_type: string;
  readonly assurance: string;
}

export interface TokenExchangeStandIn {
  /** The token endpoint (STS_SIDECAR_IDP_TOKEN_URL). */
  readonly tokenUrl: string;
  /** The issuer of the exchanged tokens; also the audience subject tokens must carry. */
  readonly issuer: OidcIssuer;
  readonly requestCount: number;
  close(): Promise<void>;
}

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';

export async function startTokenExchangeStandIn(options: {
  subjectIssuerUrl: string;
  /** Vending audience put on the exchanged token. */
  audience: string;
  profiles: Readonly<Record<string, IamProfile>>;
}): Promise<TokenExchangeStandIn> {
  const issuer = await startOidcIssuer({ path: '/key-cape-stand-in' });
  const jwks = createRemoteJWKSet(new URL(`${options.subjectIssuerUrl}/openid/v1/jwks`));
  let requestCount = 0;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    requestCount++;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const send = (status: number, body: object) => {
      res.writeHead(status, { 'content-type': 'application/json', connection: 'close' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'POST') return send(405, { error: 'invalid_request' });
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    if (form.get('grant_type') !== TOKEN_EXCHANGE) return send(400, { error: 'unsupported_grant_type' });
    if (form.get('subject_token_type') !== JWT_TYPE) return send(400, { error: 'invalid_request' });
    let sub: string;
    try {
      const { payload } = await jwtVerify(form.get('subject_token') ?? '', jwks, {
        issuer: options.subjectIssuerUrl,
        audience: issuer.url,
      });
      sub = payload.sub ?? '';
    } catch {
      return send(400, { error: 'invalid_grant', error_description: 'subject token rejected' });
    }
    const profile = options.profiles[sub];
    if (!profile) return send(400, { error: 'invalid_grant', error_description: `no profile for ${sub}` });
    const access = await issuer.mint(
      { sub: `profile:${sub}`, aud: options.audience, ...profile },
      { ttlSeconds: 300 },
    );
    send(200, {
      access_token: access,
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      token_type: 'Bearer',
      expires_in: 300,
    });
  };
  const server = await serveLoopback(handle);
  return {
    tokenUrl: `${server.origin}/token`,
    issuer,
    get requestCount() {
      return requestCount;
    },
    close: async () => {
      await Promise.allSettled([server.close(), issuer.close()]);
    },
  };
}
