/**
 * A flex-auth-compatible decision server for the local stack. It verifies the bearer token for real
 * (signature against the issuer's JWKS, issuer, audience, expiry) and decides from a small JSON policy
 * file that it re-reads on every request, so a test or an operator changes policy by rewriting the file.
 *
 * Policy file:
 * {
 *   "rules": [{ "tenant": "team-a", "subject": "*", "bucket": "artifacts", "prefix": "team-a/",
 *               "actions": ["read", "write", "list"], "max_ttl_seconds": 3600 }],
 *   "fault": null | { "kind": "status", "status": 503 } | { "kind": "delay", "ms": 5000 }
 *          | { "kind": "body", "status": 200, "body": "raw text" } | { "kind": "drip", "ms": 200 }
 * }
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { serveLoopback } from './loopback-server.ts';
import { recordSecret } from '../support/secrets.ts';

export interface PolicyRule {
  tenant: string;
  subject?: string;
  bucket: string;
  prefix?: string;
  actions: string[];
  max_ttl_seconds?: number;
  /** Obligations to attach to an allow, verbatim. */
  obligations?: Record<string, unknown>;
  /** Answer with these actions instead of the intersection (to test that the sidecar narrows). */
  answer_actions?: string[];
  /** Answer with this TTL regardless of the request (to test that the sidecar narrows). */
  answer_ttl_seconds?: number;
}

export type PolicyFault =
  | { kind: 'status'; status: number }
  | { kind: 'delay'; ms: number }
  | { kind: 'body'; status: number; body: string }
  | { kind: 'drip'; ms: number };

export interface PolicyFile {
  rules: PolicyRule[];
  fault?: PolicyFault | null;
}

export interface DecisionLogEntry {
  decision: 'allow' | 'deny' | 'error';
  decision_id: string;
  tenant?: string;
  subject?: string;
  /** `iat` of the bearer token the decision was asked with (which projected token a lease used). */
  token_issued_at?: number;
  reasons: string[];
}

export interface DecisionServer {
  readonly url: string;
  readonly requestCount: number;
  readonly decisions: readonly DecisionLogEntry[];
  close(): Promise<void>;
}

interface DecisionRequestBody {
  protected_system?: unknown;
  tenant?: unknown;
  resource?: { bucket?: unknown; prefix?: unknown };
  actions?: unknown;
  ttl_seconds?: unknown;
}

export async function startDecisionServer(options: {
  policyFile: string;
  issuerUrl: string;
  audience: string;
  host?: string;
  port?: number;
  /** Where the issuer publishes its keys (Keycloak: <realm>/protocol/openid-connect/certs); default <issuer>/jwks. */
  jwksUrl?: string;
}): Promise<DecisionServer> {
  // Keys are cached (jose's defaults), as a real flex-auth would: an issuer outage does not turn into denies.
  const jwks = createRemoteJWKSet(new URL(options.jwksUrl ?? `${options.issuerUrl}/jwks`));
  const decisions: DecisionLogEntry[] = [];
  let requestCount = 0;

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    requestCount++;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const policy = JSON.parse(await readFile(options.policyFile, 'utf8')) as PolicyFile;
    const send = (status: number, body: object) => {
      res.writeHead(status, { 'content-type': 'application/json', connection: 'close' });
      res.end(JSON.stringify(body));
    };
    const fault = policy.fault;
    if (fault?.kind === 'status') return send(fault.status, { error: 'injected fault' });
    if (fault?.kind === 'delay') await new Promise((r) => setTimeout(r, fault.ms));
    if (fault?.kind === 'body') {
      res.writeHead(fault.status, { 'content-type': 'application/json', connection: 'close' });
      return res.end(fault.body);
    }
    if (fault?.kind === 'drip') {
      res.writeHead(200, { 'content-type': 'application/json', connection: 'close' });
      for (let i = 0; i < 1000 && !res.destroyed; i++) {
        res.write(' ');
        await new Promise((r) => setTimeout(r, fault.ms));
      }
      return res.end('{}');
    }

    const decisionId = `dec-${randomUUID()}`;
    const deny = (status: number, reasons: string[], extra: Partial<DecisionLogEntry> = {}) => {
      decisions.push({ decision: 'deny', decision_id: decisionId, reasons, ...extra });
      send(status, { decision: 'deny', decision_id: decisionId, reasons });
    };
    if (req.method !== 'POST') return send(405, { error: 'POST only' });
    const auth = req.headers.authorization ?? '';
    if (!auth.startsWith('Bearer ')) return deny(403, ['missing_token']);
    let subject: string;
    let tokenTenant: unknown;
    let tokenIssuedAt: number | undefined;
    try {
      const { payload } = await jwtVerify(auth.slice(7), jwks, {
        issuer: options.issuerUrl,
        audience: options.audience,
      });
      subject = payload.sub ?? '';
      tokenIssuedAt = payload.iat;
      tokenTenant = payload['tenant'];
      // Every bearer flex-auth sees (e.g. an IAM Profile token from Keycloak) is a secret the suite's scan
      // must never find in the sidecar's output.
      recordSecret(auth.slice(7));
    } catch {
      return deny(403, ['invalid_token']);
    }
    let body: DecisionRequestBody;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as DecisionRequestBody;
    } catch {
      return send(400, { error: 'body is not JSON' });
    }
    const tenant = String(body.tenant ?? '');
    const bucket = String(body.resource?.bucket ?? '');
    const prefix = String(body.resource?.prefix ?? '');
    const actions = Array.isArray(body.actions) ? body.actions.map(String) : [];
    const ttl = Number(body.ttl_seconds);
    if (body.protected_system !== 'object-storage')
      return deny(403, ['unknown_protected_system'], { subject, tenant });
    if (tokenTenant !== undefined && tokenTenant !== tenant)
      return deny(403, ['tenant_mismatch'], { subject, tenant });
    const rule = policy.rules.find(
      (r) =>
        r.tenant === tenant &&
        (r.subject === undefined || r.subject === '*' || r.subject === subject) &&
        r.bucket === bucket &&
        prefix.startsWith(r.prefix ?? ''),
    );
    if (!rule) return deny(403, ['no_matching_rule'], { subject, tenant });
    const granted = actions.filter((a) => rule.actions.includes(a));
    if (granted.length === 0) return deny(403, ['actions_not_allowed'], { subject, tenant });
    const maxTtl = rule.max_ttl_seconds ?? 3600;
    const reasons = ttl > maxTtl ? ['ttl_out_of_bounds'] : [];
    decisions.push({
      decision: 'allow',
      decision_id: decisionId,
      subject,
      tenant,
      reasons,
      ...(tokenIssuedAt === undefined ? {} : { token_issued_at: tokenIssuedAt }),
    });
    send(200, {
      decision: 'allow',
      decision_id: decisionId,
      ttl_seconds: rule.answer_ttl_seconds ?? Math.min(ttl, maxTtl),
      actions: rule.answer_actions ?? granted,
      ...(rule.obligations
        ? { obligations: rule.obligations }
        : ttl > maxTtl
          ? { obligations: { max_ttl_seconds: maxTtl } }
          : {}),
      reasons,
    });
  };

  const server = await serveLoopback(handle, options);
  return {
    url: `${server.origin}/v1/decisions`,
    get requestCount() {
      return requestCount;
    },
    decisions,
    close: () => server.close(),
  };
}
