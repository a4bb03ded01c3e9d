/**
 * The local stack the tests and the demo share, all on 127.0.0.1: a real OIDC issuer (jose, x5c JWKS)
 * writing a kubelet-style projected token, the flex-auth-compatible decision server, and an STS: the
 * real Ceph RGW when it is usable here, otherwise (or on request) the STS stand-in; on request SeaweedFS
 * or MinIO (role-policy mode, or claim mode as `minio-claim`).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startDecisionServer, type DecisionServer, type PolicyFile } from './decision-server.ts';
import { startOidcIssuer, type OidcIssuer } from './oidc-issuer.ts';
import { writeProjectedToken } from './projected-token.ts';
import { startStsStandIn, type StsStandIn } from './sts-stand-in.ts';
import { ensureRgw, rgwUsable, setupTenant, type RgwStack, type RgwTenantSetup } from './ceph-rgw.ts';
import { recordSecret } from '../support/secrets.ts';
import {
  ensureSeaweedfs,
  ensureSeaweedfsBucket,
  mintSeaweedfsToken,
  type SeaweedfsStack,
} from './seaweedfs.ts';
import {
  ensureMinio,
  ensureMinioBucket,
  minioTarget,
  mintMinioToken,
  type MinioMode,
  type MinioStack,
} from './minio.ts';

export type StsChoice = 'ceph-rgw' | 'seaweedfs' | 'minio' | 'minio-claim' | 'stand-in' | 'auto';

export interface LocalStackOptions {
  sts?: StsChoice;
  tenant?: string;
  bucket?: string;
  prefix?: string;
  audience?: string;
  subject?: string;
  /** Lifetime of each minted projected token. */
  tokenTtlSeconds?: number;
  /** Stand-in only: lease length regardless of DurationSeconds. */
  leaseSeconds?: number;
  /** Stand-in only: end leases at the token's exp (SeaweedFS up to 4.44). */
  capAtTokenExp?: boolean;
  /** Stand-in only: DurationSeconds bounds. */
  minDurationSeconds?: number;
  maxDurationSeconds?: number;
  /** Ceph RGW only: the role's MaxSessionDuration. */
  roleMaxSessionDuration?: number;
  roleName?: string;
  policy?: PolicyFile;
  /**
   * SeaweedFS and MinIO: the issuer to use instead of the stack's shared one (the issuer-outage case starts its
   * own on the stack's outage port). Closed by the caller, not by close().
   */
  issuer?: OidcIssuer;
  /** MinIO only: an instance of the test's own (startOwnMinio) instead of the shared stack's. */
  minio?: MinioStack;
  /** Extra claims on minted tokens (e.g. tenant). */
  claims?: Record<string, unknown>;
}

export interface LocalStack {
  readonly dir: string;
  readonly tokenFile: string;
  readonly outputDir: string;
  readonly policyFile: string;
  readonly issuer: OidcIssuer;
  readonly decision: DecisionServer;
  readonly stsKind: Exclude<StsChoice, 'auto'>;
  readonly standIn: StsStandIn | undefined;
  readonly rgw: { stack: RgwStack; tenant: RgwTenantSetup } | undefined;
  /** SeaweedFS only: the shared stack (its issuer is the stack's, see test/stack/seaweedfs.sh). */
  readonly seaweedfs: SeaweedfsStack | undefined;
  /** MinIO only: the shared stack and the instance in use (its issuer is the stack's, see minio.sh). */
  readonly minio: { stack: MinioStack; mode: MinioMode; endpoint: string } | undefined;
  readonly tenant: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly audience: string;
  readonly subject: string;
  /** STS_SIDECAR_* settings for a sidecar on this stack. */
  readonly env: Record<string, string>;
  writePolicy(policy: PolicyFile): Promise<void>;
  /** Mints a fresh token and swaps it in the kubelet way; returns it. */
  rotateToken(claims?: Record<string, unknown>, ttlSeconds?: number): Promise<string>;
  close(): Promise<void>;
}

export function defaultPolicy(tenant: string, bucket: string, prefix: string): PolicyFile {
  return {
    rules: [
      { tenant, subject: '*', bucket, prefix, actions: ['read', 'write', 'list'], max_ttl_seconds: 3600 },
    ],
  };
}

/** What a local stack's sidecar is set up with, before the STS backend is chosen. */
export interface BaseSidecarEnvOptions {
  tokenDir: string;
  audience: string;
  tenant: string;
  bucket: string;
  prefix: string;
  flexAuthUrl: string;
  outputDir: string;
}

/**
 * The STS_SIDECAR_* settings every local stack starts from (the projected token, the grant asked for, the
 * decision server, the output directory, an ephemeral loopback listener, a 5 s deadline); the caller adds the
 * STS backend's settings.
 */
export function baseSidecarEnv(o: BaseSidecarEnvOptions): Record<string, string> {
  return {
    STS_SIDECAR_TOKEN_FILE: path.join(o.tokenDir, 'token'),
    STS_SIDECAR_TOKEN_AUDIENCE: o.audience,
    STS_SIDECAR_TENANT: o.tenant,
    STS_SIDECAR_BUCKET: o.bucket,
    STS_SIDECAR_PREFIX: o.prefix,
    STS_SIDECAR_ACTIONS: 'read,write,list',
    STS_SIDECAR_FLEX_AUTH_URL: o.flexAuthUrl,
    STS_SIDECAR_OUTPUT_DIR: o.outputDir,
    STS_SIDECAR_LISTEN: '127.0.0.1:0',
    STS_SIDECAR_REQUEST_TIMEOUT_SECONDS: '5',
  };
}

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const tenant = options.tenant ?? 'team-a';
  const bucket = options.bucket ?? 'artifacts';
  const prefix = options.prefix ?? 'team-a/';
  const audience = options.audience ?? 'sts.local';
  const subject = options.subject ?? 'system:serviceaccount:team-a:artifact-store';
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sts-stack-'));
  const tokenDir = path.join(dir, 'token');
  const outputDir = path.join(dir, 'credentials');
  const policyFile = path.join(dir, 'policy.json');
  await mkdir(tokenDir, { recursive: true });
  await mkdir(outputDir, { recursive: true });
  const writePolicy = (p: PolicyFile) => writeFile(policyFile, JSON.stringify(p, null, 2));
  await writePolicy(options.policy ?? defaultPolicy(tenant, bucket, prefix));

  let standIn: StsStandIn | undefined;
  let rgw: LocalStack['rgw'];
  // SeaweedFS reads its OIDC providers once, at start: its tests use the stack's fixed-port issuer.
  const seaweedfs = options.sts === 'seaweedfs' ? await ensureSeaweedfs() : undefined;
  // MinIO too: its OpenID provider is configured once, at start (test/stack/minio.sh).
  const minioMode: MinioMode | undefined =
    options.sts === 'minio' ? 'role' : options.sts === 'minio-claim' ? 'claim' : undefined;
  const minioStack = minioMode ? (options.minio ?? (await ensureMinio())) : undefined;
  // MinIO's claim mode reads the MinIO policy to apply from the token's `policy` claim: every token minted
  // for it carries one unless the caller overrides it (`policy: undefined` leaves it out).
  const modeClaims = minioMode === 'claim' && minioStack ? { policy: minioStack.rolePolicy } : {};
  const issuer = seaweedfs
    ? (options.issuer ??
      sharedIssuer('SeaweedFS', seaweedfs.issuerUrl, (c, o) => mintSeaweedfsToken(seaweedfs, c, o)))
    : minioStack
      ? (options.issuer ??
        sharedIssuer('MinIO', minioStack.issuerUrl, (c, o) =>
          mintMinioToken(minioStack, { ...modeClaims, ...c }, o),
        ))
      : await startOidcIssuer({ path: `/issuer-${path.basename(dir).slice(-6).toLowerCase()}` });
  const decision = await startDecisionServer({ policyFile, issuerUrl: issuer.url, audience });
  // Whatever fails from here on must not leave servers running (a test process would never exit).
  const closeStarted = async () => {
    await Promise.allSettled([
      options.issuer ? undefined : issuer.close(),
      decision.close(),
      standIn?.close(),
    ]);
    await rm(dir, { recursive: true, force: true });
  };

  let choice = options.sts ?? 'auto';
  if (choice === 'auto') choice = rgwUsable().ok ? 'ceph-rgw' : 'stand-in';

  const env: Record<string, string> = baseSidecarEnv({
    tokenDir,
    audience,
    tenant,
    bucket,
    prefix,
    flexAuthUrl: decision.url,
    outputDir,
  });
  const rotateToken = async (claims?: Record<string, unknown>, ttlSeconds?: number) => {
    const token = await issuer.mint(
      { sub: subject, aud: audience, ...options.claims, ...claims },
      { ttlSeconds: ttlSeconds ?? options.tokenTtlSeconds ?? 3600 },
    );
    recordSecret(token);
    await writeProjectedToken(tokenDir, token);
    return token;
  };
  try {
    if (choice === 'ceph-rgw') {
      const stack = await ensureRgw();
      const roleName =
        options.roleName ??
        `sidecar-${path
          .basename(dir)
          .slice(-6)
          .toLowerCase()
          .replace(/[^a-z0-9]/g, 'x')}`;
      const t = await setupTenant(stack, {
        issuerUrl: issuer.url,
        thumbprint: issuer.thumbprint,
        audience,
        bucket,
        roleName,
        maxSessionDuration: options.roleMaxSessionDuration ?? 3600,
      });
      rgw = { stack, tenant: t };
      Object.assign(env, {
        STS_SIDECAR_STS_ENDPOINT: stack.endpoint,
        STS_SIDECAR_STS_REGION: stack.region,
        STS_SIDECAR_ROLE_ARN: t.roleArn,
        STS_SIDECAR_BACKEND: 'ceph-rgw',
      });
    } else if (choice === 'seaweedfs' && seaweedfs) {
      recordSecret(seaweedfs.admin.secretAccessKey);
      await ensureSeaweedfsBucket(seaweedfs, bucket);
      Object.assign(env, {
        STS_SIDECAR_STS_ENDPOINT: seaweedfs.endpoint,
        STS_SIDECAR_STS_REGION: seaweedfs.region,
        STS_SIDECAR_ROLE_ARN: seaweedfs.roleArn,
        STS_SIDECAR_BACKEND: 'seaweedfs',
      });
    } else if (minioMode && minioStack) {
      recordSecret(minioStack.admin.secretAccessKey);
      recordSecret(minioStack.clientSecret);
      await ensureMinioBucket(minioStack, minioMode, bucket);
      Object.assign(env, {
        STS_SIDECAR_STS_ENDPOINT: minioTarget(minioStack, minioMode).endpoint,
        STS_SIDECAR_STS_REGION: minioStack.region,
        STS_SIDECAR_BACKEND: 'minio',
        // Claim mode: no RoleArn (MinIO ignores one it does not know, but the documented setup sends none).
        ...(minioMode === 'role' ? { STS_SIDECAR_ROLE_ARN: minioStack.roleArn } : {}),
      });
    } else {
      standIn = await startStsStandIn({
        issuerUrl: issuer.url,
        audience,
        leaseSeconds: options.leaseSeconds,
        capAtTokenExp: options.capAtTokenExp,
        minDurationSeconds: options.minDurationSeconds,
        maxDurationSeconds: options.maxDurationSeconds,
      });
      Object.assign(env, {
        STS_SIDECAR_STS_ENDPOINT: standIn.endpoint,
        STS_SIDECAR_ROLE_ARN: 'arn:aws:iam::000000000000:role/stand-in',
        STS_SIDECAR_BACKEND: 'generic',
      });
    }
    await rotateToken();
  } catch (err) {
    await closeStarted();
    throw err;
  }

  return {
    dir,
    tokenFile: env.STS_SIDECAR_TOKEN_FILE!,
    outputDir,
    policyFile,
    issuer,
    decision,
    stsKind: choice,
    standIn,
    rgw,
    seaweedfs,
    minio:
      minioMode && minioStack
        ? { stack: minioStack, mode: minioMode, endpoint: minioTarget(minioStack, minioMode).endpoint }
        : undefined,
    tenant,
    bucket,
    prefix,
    audience,
    subject,
    env,
    writePolicy,
    rotateToken,
    close: closeStarted,
  };
}

/** A stack's fixed-port issuer as an OidcIssuer: it mints with the stack's key; it cannot be paused here. */
function sharedIssuer(name: string, url: string, mint: OidcIssuer['mint']): OidcIssuer {
  const notHere = () =>
    Promise.reject(new Error(`the ${name} stack issuer is shared by all test files; it is not paused`));
  return {
    url,
    thumbprint: '',
    requestCount: 0,
    mint,
    rotateKey: notHere,
    pause: notHere,
    resume: notHere,
    close: () => Promise.resolve(),
  };
}
