/**
 * The kube-apiserver's service-account issuer, published where an STS can read it. The API server of the
 * stack signs service-account tokens (the kubelet's projected ones too) with its sa.key and names itself
 * http://127.0.0.1:<KUBE_ISSUER_PORT> in `iss`; Ceph RGW verifies a web identity by fetching
 * `<iss>/.well-known/openid-configuration` and the JWKS, whose first key must carry an x5c certificate
 * (docs/backends.md) that Kubernetes' own JWKS never has. This serves that: the API server's public key
 * under the API server's `kid`, with a self-signed certificate for it, as a cluster operator would publish
 * it for RGW (a JWKS with x5c beside the cluster's own discovery).
 */
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { startOidcIssuer, type OidcIssuer } from './oidc-issuer.ts';
import { KUBE_STACK_DIR, type KubeStack } from './kube.ts';

/** The `kid` kube-apiserver puts in the tokens it signs: base64url(SHA-256(PKIX DER of the public key)). */
export function kubeKeyId(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64url');
}

/** Serves the API server's issuer discovery and x5c JWKS on its issuer URL (loopback, fixed port). */
export async function startKubeIssuer(stack: KubeStack): Promise<OidcIssuer> {
  const url = new URL(stack.issuer);
  if (url.protocol !== 'http:' || url.hostname !== '127.0.0.1' || url.pathname !== '/')
    throw new Error(`the kube stack's issuer ${stack.issuer} is not http://127.0.0.1:<port>`);
  const pki = join(KUBE_STACK_DIR, 'pki');
  const privateKey = createPrivateKey(readFileSync(join(pki, 'sa.key'), 'utf8'));
  const privateJwk = privateKey.export({ format: 'jwk' }) as JWK;
  return startOidcIssuer({
    port: Number(url.port),
    path: '',
    privateJwk,
    kid: kubeKeyId(readFileSync(join(pki, 'sa.pub'), 'utf8')),
  });
}

/** Whether the issuer URL already serves the API server's current key (another test run's server). */
export async function kubeIssuerServed(stack: KubeStack): Promise<boolean> {
  const kid = kubeKeyId(readFileSync(join(KUBE_STACK_DIR, 'pki', 'sa.pub'), 'utf8'));
  try {
    const res = await fetch(`${stack.issuer}/jwks`, { signal: AbortSignal.timeout(5000) });
    const jwks = (await res.json()) as { keys: { kid?: string }[] };
    return jwks.keys[0]?.kid === kid;
  } catch {
    return false;
  }
}

/** SHA-1 of the first JWKS key's x5c certificate: what RGW's CreateOpenIDConnectProvider wants. */
export async function issuerThumbprint(issuerUrl: string): Promise<string> {
  const res = await fetch(`${issuerUrl}/jwks`, { signal: AbortSignal.timeout(5000) });
  const jwks = (await res.json()) as { keys: { x5c?: string[] }[] };
  const cert = jwks.keys[0]?.x5c?.[0];
  if (!cert) throw new Error(`${issuerUrl}/jwks: the first key has no x5c`);
  return createHash('sha1').update(Buffer.from(cert, 'base64')).digest('hex');
}
