/**
 * TypeScript side of the Ceph RGW test stack (test/stack/ceph-rgw.sh): start/stop the single-node cluster,
 * tweak radosgw config live through its admin socket, and register per-test OIDC providers, roles and
 * buckets through RGW's IAM API (SigV4-signed Query API; @aws-sdk/client-iam is not a dependency).
 */
import { runCommand } from './stack-script.ts';
import { ensureStackBucket, stackS3Client } from './s3-client.ts';
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { accessSync, constants as fsConstants } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { S3Client } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import type { Checksum, SourceData } from '@smithy/types';
import { z } from 'zod';

export interface RgwStack {
  endpoint: string;
  region: string;
  admin: { accessKeyId: string; secretAccessKey: string };
  adminSocket: string;
  cephConf: string;
}

export interface RgwTenantSetup {
  roleArn: string;
  roleName: string;
  bucket: string;
  providerArn: string;
}

const here = dirname(fileURLToPath(import.meta.url));
const SCRIPT = join(here, 'ceph-rgw.sh');
const REPO_ROOT = resolve(here, '..', '..');
export const DEFAULT_STACK_DIR = join(REPO_ROOT, '.stack', 'ceph');

function onPath(bin: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, bin), fsConstants.X_OK);
      return true;
    } catch {
      // keep looking
    }
  }
  return false;
}

/** radosgw, ceph-mon, ceph-osd (and the ceph CLI tools the script needs) are on PATH. */
export function rgwInstalled(): boolean {
  return ['radosgw', 'ceph-mon', 'ceph-osd', 'ceph', 'radosgw-admin', 'ceph-authtool', 'monmaptool'].every(
    onPath,
  );
}

export function rgwUsable(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux')
    return { ok: false, reason: `Ceph RGW stack needs Linux (${process.platform})` };
  if (!rgwInstalled()) {
    return {
      ok: false,
      reason: 'Ceph not installed (radosgw/ceph-mon/ceph-osd); run test/stack/ceph-rgw.sh install',
    };
  }
  if (process.getuid?.() !== 0) return { ok: false, reason: 'Ceph RGW stack needs root' };
  return { ok: true };
}

const run = runCommand;

function scriptEnv(opts?: { stackDir?: string; port?: number }): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, STACK_DIR: opts?.stackDir ?? DEFAULT_STACK_DIR };
  if (opts?.port !== undefined) env.RGW_PORT = String(opts.port);
  return env;
}

const EnvJson = z.object({
  endpoint: z.string(),
  port: z.number(),
  region: z.string(),
  accessKeyId: z.string(),
  secretAccessKey: z.string(),
  adminSocket: z.string(),
  cephConf: z.string(),
  adminKeyring: z.string(),
  stackDir: z.string(),
  pidFiles: z.object({ mon: z.string(), osd: z.string(), rgw: z.string() }),
});

async function readStack(stackDir: string): Promise<RgwStack> {
  const parsed = EnvJson.parse(JSON.parse(await readFile(join(stackDir, 'env.json'), 'utf8')));
  return {
    endpoint: parsed.endpoint,
    region: parsed.region,
    admin: { accessKeyId: parsed.accessKeyId, secretAccessKey: parsed.secretAccessKey },
    adminSocket: parsed.adminSocket,
    cephConf: parsed.cephConf,
  };
}

/** True when the stack in stackDir is up (all three daemons alive and radosgw answering). */
export async function isRgwUp(opts?: { stackDir?: string }): Promise<boolean> {
  try {
    await run('bash', [SCRIPT, 'status'], { env: scriptEnv(opts), timeoutMs: 15_000 });
    return true;
  } catch {
    return false;
  }
}

/** Runs `ceph-rgw.sh up` (idempotent, serialized by a lock file) and returns the stack's coordinates. */
export async function ensureRgw(opts?: { stackDir?: string; port?: number }): Promise<RgwStack> {
  const usable = rgwUsable();
  if (!usable.ok) throw new Error(usable.reason);
  const stackDir = opts?.stackDir ?? DEFAULT_STACK_DIR;
  const { stderr } = await run('bash', [SCRIPT, 'up'], { env: scriptEnv(opts), timeoutMs: 180_000 });
  if (!stderr.includes('already up') && stderr.trim() !== '') process.stderr.write(stderr);
  const stack = await readStack(stackDir);
  if (opts?.port !== undefined && !stack.endpoint.endsWith(`:${opts.port}`)) {
    throw new Error(`RGW in ${stackDir} already runs at ${stack.endpoint}, not on port ${opts.port}`);
  }
  return stack;
}

export async function stopRgw(opts?: { stackDir?: string }): Promise<void> {
  await run('bash', [SCRIPT, 'down'], { env: scriptEnv(opts), timeoutMs: 60_000 });
}

/** `ceph --admin-daemon <asok> config set <key> <value>`, e.g. rgw_sts_min_session_duration 60. */
export async function setRgwConfig(stack: RgwStack, key: string, value: string): Promise<void> {
  const { stdout } = await run('ceph', ['--admin-daemon', stack.adminSocket, 'config', 'set', key, value], {
    timeoutMs: 15_000,
  });
  if (/error/i.test(stdout)) throw new Error(`config set ${key}=${value}: ${stdout.trim()}`);
}

// ---------------------------------------------------------------------------------------------------------
// IAM Query API on the RGW port, SigV4-signed with the admin keys.

class NodeSha256 implements Checksum {
  private readonly secret: Buffer | undefined;
  private h: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.secret = secret === undefined ? undefined : toBuffer(secret);
    this.h = this.fresh();
  }
  private fresh(): Hash | Hmac {
    return this.secret ? createHmac('sha256', this.secret) : createHash('sha256');
  }
  update(data: SourceData): void {
    this.h.update(toBuffer(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
  reset(): void {
    this.h = this.fresh();
  }
}
function toBuffer(d: SourceData): Buffer {
  if (typeof d === 'string') return Buffer.from(d, 'utf8');
  if (ArrayBuffer.isView(d)) return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  return Buffer.from(d);
}

/** RFC 3986 encoding: spaces as %20, never '+' (RGW 16.2 does not decode '+' in IAM/STS bodies). */
function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function xmlUnescape(s: string): string {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&#(\d+);/g, (_, n: string) => String.fromCodePoint(Number(n)))
    .replace(/&#x([0-9a-f]+);/gi, (_, n: string) => String.fromCodePoint(parseInt(n, 16)))
    .replace(/&amp;/g, '&');
}
function xmlField(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(xml);
  return m?.[1] === undefined ? undefined : xmlUnescape(m[1]);
}
function xmlMembers(xml: string, listTag: string): string[] {
  const block = new RegExp(`<${listTag}>([\\s\\S]*?)</${listTag}>`).exec(xml)?.[1] ?? '';
  return [...block.matchAll(/<member>([\s\S]*?)<\/member>/g)].map((m) => xmlUnescape(m[1] ?? ''));
}

interface IamAnswer {
  status: number;
  code: string | undefined;
  body: string;
}

export class IamError extends Error {
  readonly status: number;
  readonly code: string | undefined;
  constructor(action: string, answer: IamAnswer) {
    super(`IAM ${action} failed: HTTP ${answer.status} ${answer.code ?? ''} ${answer.body.slice(0, 300)}`);
    this.name = 'IamError';
    this.status = answer.status;
    this.code = answer.code;
  }
}

async function iamCall(stack: RgwStack, action: string, params: Record<string, string>): Promise<IamAnswer> {
  const url = new URL(stack.endpoint);
  const body = Object.entries({ Action: action, Version: '2010-05-08', ...params })
    .map(([k, v]) => `${rfc3986(k)}=${rfc3986(v)}`)
    .join('&');
  const signer = new SignatureV4({
    service: 'iam',
    region: stack.region,
    credentials: stack.admin,
    sha256: NodeSha256,
  });
  const signed = await signer.sign({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    port: url.port ? Number(url.port) : undefined,
    path: '/',
    query: {},
    headers: { host: url.host, 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    body,
  });
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(signed.headers)) if (k.toLowerCase() !== 'host') headers[k] = v;
  const res = await fetch(new URL('/', url), {
    method: 'POST',
    headers,
    body,
    signal: AbortSignal.timeout(20_000),
  });
  const text = await res.text();
  return { status: res.status, code: res.ok ? undefined : xmlField(text, 'Code'), body: text };
}

async function iam(stack: RgwStack, action: string, params: Record<string, string>): Promise<string> {
  const answer = await iamCall(stack, action, params);
  if (answer.status < 200 || answer.status >= 300) throw new IamError(action, answer);
  return answer.body;
}

const isConflict = (e: unknown): boolean =>
  e instanceof IamError && (e.status === 409 || e.code === 'EntityAlreadyExists');

const members = (prefix: string, values: string[]): Record<string, string> =>
  Object.fromEntries(values.map((v, i) => [`${prefix}.member.${i + 1}`, v]));

interface PolicyDoc {
  Version: string;
  Statement: unknown[];
}

function parsePolicy(raw: string | undefined): PolicyDoc | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  for (const candidate of [raw, safeDecode(raw)]) {
    try {
      const doc = JSON.parse(candidate) as Partial<PolicyDoc>;
      const st = doc.Statement;
      return { Version: doc.Version ?? '2012-10-17', Statement: Array.isArray(st) ? st : st ? [st] : [] };
    } catch {
      // try the next form
    }
  }
  return undefined;
}
function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, '%20'));
  } catch {
    return s;
  }
}

async function ensureProvider(stack: RgwStack, issuerUrl: string, thumbprint: string, audience: string) {
  const hostPath = issuerUrl.replace(/^https?:\/\//, '');
  const arn = `arn:aws:iam:::oidc-provider/${hostPath}`;
  const create = async (clientIds: string[]): Promise<string> => {
    const xml = await iam(stack, 'CreateOpenIDConnectProvider', {
      Url: issuerUrl,
      ...members('ClientIDList', clientIds),
      ...members('ThumbprintList', [thumbprint]),
    });
    return xmlField(xml, 'OpenIDConnectProviderArn') ?? arn;
  };
  try {
    return await create([audience]);
  } catch (e) {
    if (!isConflict(e)) throw e;
  }
  // Already registered (same issuer URL): make sure our audience is among its client ids and our key's
  // thumbprint is the registered one (an issuer on a fixed URL, e.g. the kube-apiserver's, gets a new key
  // each time its stack starts, while the RGW stack may outlive it).
  const xml = await iam(stack, 'GetOpenIDConnectProvider', { OpenIDConnectProviderArn: arn });
  const clientIds = xmlMembers(xml, 'ClientIDList');
  const thumbprints = xmlMembers(xml, 'ThumbprintList');
  if (clientIds.includes(audience) && (thumbprints.length === 0 || thumbprints.includes(thumbprint)))
    return arn;
  // RGW 16.2 has no AddClientIDToOpenIDConnectProvider: re-create with the union.
  await iam(stack, 'DeleteOpenIDConnectProvider', { OpenIDConnectProviderArn: arn });
  return create(clientIds.includes(audience) ? clientIds : [...clientIds, audience]);
}

/** Deletes a role and its inline policies; returns the policies (name -> document) so they can be re-put. */
async function deleteRole(stack: RgwStack, roleName: string): Promise<Map<string, string>> {
  const saved = new Map<string, string>();
  const xml = await iam(stack, 'ListRolePolicies', { RoleName: roleName });
  for (const policyName of xmlMembers(xml, 'PolicyNames')) {
    const doc = xmlField(
      await iam(stack, 'GetRolePolicy', { RoleName: roleName, PolicyName: policyName }),
      'PolicyDocument',
    );
    const parsed = parsePolicy(doc);
    if (parsed) saved.set(policyName, JSON.stringify(parsed));
    await iam(stack, 'DeleteRolePolicy', { RoleName: roleName, PolicyName: policyName });
  }
  await iam(stack, 'DeleteRole', { RoleName: roleName });
  return saved;
}

async function ensureRole(
  stack: RgwStack,
  roleName: string,
  statement: Record<string, unknown>,
  maxSessionDuration: number,
): Promise<string> {
  const create = async (doc: PolicyDoc): Promise<string> => {
    const xml = await iam(stack, 'CreateRole', {
      RoleName: roleName,
      Path: '/',
      AssumeRolePolicyDocument: JSON.stringify(doc),
      MaxSessionDuration: String(maxSessionDuration),
    });
    const arn = xmlField(xml, 'Arn');
    if (!arn) throw new Error(`CreateRole ${roleName}: no Arn in ${xml.slice(0, 300)}`);
    return arn;
  };
  const fresh: PolicyDoc = { Version: '2012-10-17', Statement: [statement] };
  try {
    return await create(fresh);
  } catch (e) {
    if (!isConflict(e)) throw e;
  }
  // The role exists (e.g. shared by several issuers, or a previous run): merge our trust statement in.
  const xml = await iam(stack, 'GetRole', { RoleName: roleName });
  const arn = xmlField(xml, 'Arn');
  if (!arn) throw new Error(`GetRole ${roleName}: no Arn in ${xml.slice(0, 300)}`);
  const trust = parsePolicy(xmlField(xml, 'AssumeRolePolicyDocument')) ?? fresh;
  const wanted = JSON.stringify(statement);
  const hasStatement = trust.Statement.some((s) => JSON.stringify(s) === wanted);
  const merged: PolicyDoc = hasStatement ? trust : { ...trust, Statement: [...trust.Statement, statement] };
  const currentMax = Number(xmlField(xml, 'MaxSessionDuration') ?? '3600');
  if (currentMax !== maxSessionDuration) {
    // RGW 16.2 cannot update MaxSessionDuration: re-create the role, keeping its inline policies.
    const policies = await deleteRole(stack, roleName);
    const newArn = await create(merged);
    for (const [policyName, doc] of policies) {
      await iam(stack, 'PutRolePolicy', { RoleName: roleName, PolicyName: policyName, PolicyDocument: doc });
    }
    return newArn;
  }
  if (!hasStatement) {
    await iam(stack, 'UpdateAssumeRolePolicy', {
      RoleName: roleName,
      PolicyDocument: JSON.stringify(merged),
    });
  }
  return arn;
}

/** An S3 client for the stack (see stackS3Client). */
export const rgwS3Client: (
  stack: RgwStack,
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
) => S3Client = stackS3Client;

/**
 * Registers the issuer as an OIDC provider, creates (or extends) a role trusting it for
 * sts:AssumeRoleWithWebIdentity with `<host:port/path>:aud` = audience, puts a coarse role policy allowing
 * s3:* on the bucket and its objects, and creates the bucket. Idempotent per (issuerUrl, roleName); several
 * issuers may share one role (their trust statements are merged).
 */
export async function setupTenant(
  stack: RgwStack,
  opts: {
    issuerUrl: string;
    thumbprint: string;
    audience: string;
    bucket: string;
    roleName: string;
    maxSessionDuration?: number;
  },
): Promise<RgwTenantSetup> {
  const { issuerUrl, thumbprint, audience, bucket, roleName } = opts;
  if (!/^https?:\/\/[^/]+(\/.*[^/])?$/.test(issuerUrl)) {
    throw new Error(`issuerUrl must be http(s)://host[:port][/path] without a trailing slash: ${issuerUrl}`);
  }
  if (!/^[A-Za-z0-9=,.@-]{1,64}$/.test(roleName)) {
    throw new Error(`role name ${JSON.stringify(roleName)}: use [A-Za-z0-9=,.@-] only (RGW refuses _ and +)`);
  }
  const maxSessionDuration = opts.maxSessionDuration ?? 3600;
  const hostPath = issuerUrl.replace(/^https?:\/\//, '');

  const providerArn = await ensureProvider(stack, issuerUrl, thumbprint, audience);
  const statement = {
    Effect: 'Allow',
    Principal: { Federated: [providerArn] },
    Action: ['sts:AssumeRoleWithWebIdentity'],
    Condition: { StringEquals: { [`${hostPath}:aud`]: audience } },
  };
  const roleArn = await ensureRole(stack, roleName, statement, maxSessionDuration);
  const rolePolicy = {
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Action: ['s3:*'], Resource: [`arn:aws:s3:::${bucket}`, `arn:aws:s3:::${bucket}/*`] },
    ],
  };
  await iam(stack, 'PutRolePolicy', {
    RoleName: roleName,
    PolicyName: `s3-${bucket}`,
    PolicyDocument: JSON.stringify(rolePolicy),
  });

  await ensureStackBucket(stack, bucket);
  return { roleArn, roleName, bucket, providerArn };
}
