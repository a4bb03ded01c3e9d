/**
 * The expanded-mode stack on 127.0.0.1: a stand-in for the cluster's service-account issuer
 * (test/stack/oidc-issuer.ts; no kube-apiserver runs here) writing a kubelet-style projected token whose
 * aud is the Keycloak realm's issuer URL, a real Keycloak realm that trusts that issuer (one federated-jwt
 * client per service account), the decision server verifying Keycloak's tokens against Keycloak's JWKS,
 * and the real Ceph RGW with an OIDC provider registered for Keycloak's issuer.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { recordSecret } from '../support/secrets.ts';
import { ensureRgw, setupTenant, type RgwStack, type RgwTenantSetup } from './ceph-rgw.ts';
import { startDecisionServer, type DecisionServer, type PolicyFile } from './decision-server.ts';
import {
  createRealm,
  deleteRealm,
  ensureKeycloak,
  realmThumbprint,
  type KeycloakRealm,
  type KeycloakStack,
  type WorkloadClient,
} from './keycloak.ts';
import { baseSidecarEnv, defaultPolicy } from './local-stack.ts';
import { startOidcIssuer, type OidcIssuer } from './oidc-issuer.ts';
import { writeProjectedToken } from './projected-token.ts';

export interface KeycloakLocalStack {
  readonly dir: string;
  readonly outputDir: string;
  readonly saIssuer: OidcIssuer;
  readonly keycloak: KeycloakStack;
  readonly realm: KeycloakRealm;
  readonly decision: DecisionServer;
  readonly rgw: { stack: RgwStack; tenant: RgwTenantSetup };
  readonly tenant: string;
  readonly bucket: string;
  readonly prefix: string;
  /** The vending audience the Keycloak token carries (STS_SIDECAR_TOKEN_AUDIENCE). */
  readonly audience: string;
  /** STS_SIDECAR_* for a sidecar doing the client-assertion exchange at this realm. */
  readonly env: Record<string, string>;
  writePolicy(policy: PolicyFile): Promise<void>;
  /** Mints a projected token for this service account (aud = the realm issuer) and swaps it in. */
  rotateToken(serviceAccount: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * The real Ceph RGW trusts a realm's issuer for a role on the bucket. RGW checks the token's client_id claim
 * (Keycloak adds one: the clientId) or else its first aud against the provider's client-id list, so the
 * vending audience and every clientId go in; one trust statement each.
 */
export async function trustRealm(
  rgw: RgwStack,
  realm: KeycloakRealm,
  options: { audiences: readonly string[]; bucket: string; roleName: string },
): Promise<RgwTenantSetup> {
  const thumbprint = await realmThumbprint(realm);
  let tenantSetup: RgwTenantSetup | undefined;
  for (const audience of options.audiences) {
    tenantSetup = await setupTenant(rgw, {
      issuerUrl: realm.issuer,
      thumbprint,
      audience,
      bucket: options.bucket,
      roleName: options.roleName,
    });
  }
  if (!tenantSetup) throw new Error('no RGW tenant set up');
  return tenantSetup;
}

export async function startKeycloakStack(options: {
  clients: readonly WorkloadClient[];
  tenant?: string;
  bucket?: string;
  prefix?: string;
  audience?: string;
}): Promise<KeycloakLocalStack> {
  const tenant = options.tenant ?? 'team-a';
  const bucket = options.bucket ?? 'kc-artifacts';
  const prefix = options.prefix ?? `${tenant}/`;
  const audience = options.audience ?? 'sts.sidecar.test';
  const id = randomBytes(4).toString('hex');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sts-kc-'));
  const tokenDir = path.join(dir, 'token');
  const outputDir = path.join(dir, 'credentials');
  const policyFile = path.join(dir, 'policy.json');
  await mkdir(tokenDir, { recursive: true });
  await mkdir(outputDir, { recursive: true });
  const writePolicy = (p: PolicyFile) => writeFile(policyFile, JSON.stringify(p, null, 2));
  await writePolicy(defaultPolicy(tenant, bucket, prefix));

  const [keycloak, rgwStack, saIssuer] = await Promise.all([
    ensureKeycloak(),
    ensureRgw(),
    startOidcIssuer({ path: `/sa-issuer-${id}` }),
  ]);
  const realmName = `sts-${id}`;
  let decision: DecisionServer | undefined;
  const close = async () => {
    await Promise.allSettled([saIssuer.close(), decision?.close(), deleteRealm(keycloak, realmName)]);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const realm = await createRealm(keycloak, {
      realm: realmName,
      saIssuerUrl: saIssuer.url,
      clients: options.clients,
    });
    decision = await startDecisionServer({
      policyFile,
      issuerUrl: realm.issuer,
      jwksUrl: realm.jwksUrl,
      audience,
    });
    const tenantSetup = await trustRealm(rgwStack, realm, {
      audiences: [audience, ...options.clients.map((c) => c.clientId)],
      bucket,
      roleName: `kc-${id}`,
    });
    const env: Record<string, string> = {
      ...baseSidecarEnv({ tokenDir, audience, tenant, bucket, prefix, flexAuthUrl: decision.url, outputDir }),
      STS_SIDECAR_STS_ENDPOINT: rgwStack.endpoint,
      STS_SIDECAR_STS_REGION: rgwStack.region,
      STS_SIDECAR_ROLE_ARN: tenantSetup.roleArn,
      STS_SIDECAR_BACKEND: 'ceph-rgw',
      STS_SIDECAR_IDENTITY_EXCHANGE: 'client-assertion',
      STS_SIDECAR_IDP_TOKEN_URL: realm.tokenUrl,
    };
    const rotateToken = async (serviceAccount: string) => {
      const token = await saIssuer.mint({ sub: serviceAccount, aud: realm.issuer });
      recordSecret(token);
      await writeProjectedToken(tokenDir, token);
      return token;
    };
    return {
      dir,
      outputDir,
      saIssuer,
      keycloak,
      realm,
      decision,
      rgw: { stack: rgwStack, tenant: tenantSetup },
      tenant,
      bucket,
      prefix,
      audience,
      env,
      writePolicy,
      rotateToken,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
