/**
 * TypeScript side of the Keycloak test stack (test/stack/keycloak.sh): start/stop the server, and create one
 * realm per test from the project's realm template (test/stack/keycloak/realm.json) through the admin REST
 * API. Each realm trusts its own stand-in service-account issuer (test/stack/oidc-issuer.ts stands in for
 * the cluster's kube-apiserver issuer, which cannot run here) and holds one federated-jwt client per test
 * service account, so no two tests share identity configuration.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { runCommand } from './stack-script.ts';

const here = dirname(fileURLToPath(import.meta.url));
export const KEYCLOAK_SCRIPT = join(here, 'keycloak.sh');
const REPO_ROOT = resolve(here, '..', '..');
export const REALM_TEMPLATE = join(here, 'keycloak', 'realm.json');
export const KEYCLOAK_VERSION = process.env.KEYCLOAK_VERSION ?? '26.7.3';
const STACK_DIR = join(REPO_ROOT, '.stack', 'keycloak');

export interface KeycloakStack {
  readonly url: string;
  readonly port: number;
  readonly adminUser: string;
  readonly adminPassword: string;
  readonly pid: number;
  readonly version: string;
}

const EnvJson = z.object({
  url: z.string(),
  port: z.number(),
  adminUser: z.string(),
  adminPassword: z.string(),
  version: z.string(),
  pid: z.number(),
});

/** The dist is cached and Java is on PATH; why not otherwise. */
export function keycloakUsable(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux')
    return { ok: false, reason: `Keycloak stack needs Linux (${process.platform})` };
  const cache = process.env.STS_SIDECAR_CACHE ?? join(homedir(), '.cache', 'sts-sidecar');
  if (!existsSync(join(cache, `keycloak-${KEYCLOAK_VERSION}`, 'bin', 'kc.sh'))) {
    return {
      ok: false,
      reason: `Keycloak ${KEYCLOAK_VERSION} not installed; run: bash test/stack/keycloak.sh install`,
    };
  }
  return { ok: true };
}

const run = (args: string[], timeoutMs: number) =>
  runCommand('bash', [KEYCLOAK_SCRIPT, ...args], { timeoutMs });

async function readStack(): Promise<KeycloakStack> {
  return EnvJson.parse(JSON.parse(await readFile(join(STACK_DIR, 'env.json'), 'utf8')));
}

export async function isKeycloakUp(): Promise<boolean> {
  try {
    await run(['status'], 15_000);
    return true;
  } catch {
    return false;
  }
}

/** `keycloak.sh up` (idempotent, serialised by a lock); returns the stack's coordinates. */
export async function ensureKeycloak(): Promise<KeycloakStack> {
  const usable = keycloakUsable();
  if (!usable.ok) throw new Error(usable.reason);
  await run(['up'], 300_000);
  return readStack();
}

/** Stops the JVM, keeping its H2 database (realms survive a later ensureKeycloak). */
export async function stopKeycloak(): Promise<void> {
  await run(['stop'], 60_000);
}

export async function downKeycloak(): Promise<void> {
  await run(['down'], 60_000);
}

async function adminToken(kc: KeycloakStack): Promise<string> {
  const res = await fetch(`${kc.url}/realms/master/protocol/openid-connect/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'password',
      client_id: 'admin-cli',
      username: kc.adminUser,
      password: kc.adminPassword,
    }),
    signal: AbortSignal.timeout(20_000),
  });
  if (!res.ok) throw new Error(`Keycloak admin login: HTTP ${res.status}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

async function admin(kc: KeycloakStack, method: string, path: string, body?: unknown): Promise<Response> {
  const token = await adminToken(kc);
  return fetch(`${kc.url}/admin${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(60_000),
  });
}

/** One test service account and what Keycloak's client says about it. */
export interface WorkloadClient {
  /** `system:serviceaccount:<ns>:<sa>`: the SA token's sub. */
  readonly serviceAccount: string;
  /** Keycloak clientId (also the token's client_id claim). */
  readonly clientId: string;
  /** Hard-coded tenant claim; undefined leaves the tenant mapper out. */
  readonly tenant: string | undefined;
  readonly principalType?: string;
  readonly assurance?: string;
  /** Vending audience added to the token's aud. */
  readonly audience: string;
}

interface Mapper {
  name: string;
  protocolMapper: string;
  config: Record<string, string>;
}
interface ClientRep {
  clientId: string;
  description?: string;
  attributes: Record<string, string>;
  protocolMappers: Mapper[];
}
interface RealmRep {
  realm: string;
  identityProviders: { alias: string; config: Record<string, string> }[];
  clients: ClientRep[];
}

/** The realm template with its issuer, name and clients filled in. */
export async function realmFromTemplate(options: {
  realm: string;
  saIssuerUrl: string;
  clients: readonly WorkloadClient[];
}): Promise<RealmRep> {
  const template = JSON.parse(await readFile(REALM_TEMPLATE, 'utf8')) as RealmRep;
  const [provider] = template.identityProviders;
  const [clientTemplate] = template.clients;
  if (!provider || !clientTemplate) throw new Error(`${REALM_TEMPLATE}: no identity provider or client`);
  const mapper = (name: string) => {
    const found = clientTemplate.protocolMappers.find((m) => m.name === name);
    if (!found) throw new Error(`${REALM_TEMPLATE}: no ${name} mapper`);
    return found;
  };
  const hardcoded = (name: string, value: string): Mapper => ({
    ...mapper(name),
    config: { ...mapper(name).config, 'claim.value': value },
  });
  return {
    ...template,
    realm: options.realm,
    identityProviders: [
      {
        ...provider,
        config: {
          ...provider.config,
          issuer: options.saIssuerUrl,
          jwksUrl: `${options.saIssuerUrl}/openid/v1/jwks`,
        },
      },
    ],
    clients: options.clients.map((c) => ({
      ...clientTemplate,
      clientId: c.clientId,
      description: `Workload ${c.serviceAccount}`,
      attributes: { ...clientTemplate.attributes, 'jwt.credential.sub': c.serviceAccount },
      protocolMappers: [
        ...(c.tenant === undefined ? [] : [hardcoded('tenant', c.tenant)]),
        hardcoded('principal_type', c.principalType ?? 'workload'),
        hardcoded('assurance', c.assurance ?? 'k8s-projected-sa'),
        {
          ...mapper('vending-audience'),
          config: { ...mapper('vending-audience').config, 'included.custom.audience': c.audience },
        },
      ],
    })),
  };
}

export interface KeycloakRealm {
  readonly name: string;
  /** `iss` of its tokens, e.g. http://127.0.0.1:18081/realms/t-1a2b (what RGW registers, minus scheme). */
  readonly issuer: string;
  readonly tokenUrl: string;
  readonly jwksUrl: string;
}

/** Creates (or re-creates) a realm from the template. */
export async function createRealm(
  kc: KeycloakStack,
  options: { realm: string; saIssuerUrl: string; clients: readonly WorkloadClient[] },
): Promise<KeycloakRealm> {
  const rep = await realmFromTemplate(options);
  const res = await admin(kc, 'POST', '/realms', rep);
  if (res.status === 409) {
    await deleteRealm(kc, options.realm);
    const again = await admin(kc, 'POST', '/realms', rep);
    if (!again.ok)
      throw new Error(`create realm ${options.realm}: HTTP ${again.status} ${await again.text()}`);
  } else if (!res.ok) {
    throw new Error(`create realm ${options.realm}: HTTP ${res.status} ${await res.text()}`);
  }
  const issuer = `${kc.url}/realms/${options.realm}`;
  return {
    name: options.realm,
    issuer,
    tokenUrl: `${issuer}/protocol/openid-connect/token`,
    jwksUrl: `${issuer}/protocol/openid-connect/certs`,
  };
}

export async function deleteRealm(kc: KeycloakStack, realm: string): Promise<void> {
  const res = await admin(kc, 'DELETE', `/realms/${encodeURIComponent(realm)}`);
  if (!res.ok && res.status !== 404) throw new Error(`delete realm ${realm}: HTTP ${res.status}`);
}

/** SHA-1 of the realm's first JWKS certificate (RGW wants a thumbprint list; it does not check it). */
export async function realmThumbprint(realm: KeycloakRealm): Promise<string> {
  const { createHash } = await import('node:crypto');
  const res = await fetch(realm.jwksUrl, { signal: AbortSignal.timeout(10_000) });
  const jwks = (await res.json()) as { keys: { x5c?: string[]; use?: string }[] };
  const first = jwks.keys[0];
  if (!first?.x5c?.[0]) throw new Error(`${realm.jwksUrl}: first key has no x5c`);
  return createHash('sha1').update(Buffer.from(first.x5c[0], 'base64')).digest('hex');
}
