// Issue 18: `once` fails closed like the daemon. Over a set an earlier run left in the directory, every
// deny-like outcome removes it before exit 4 and a failure keeps it; a daemon restarted onto a set it is
// denied at once removes it, and its credentials endpoint stops serving the copy it read at start. Real
// Ceph RGW, the local OIDC issuer and the decision server (Keycloak's refusals: test/identity/keycloak.test.ts;
// the Secret sink: test/kube/secret-sink.test.ts).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { rgwUsable } from '../stack/ceph-rgw.ts';
import type { PolicyFile } from '../stack/decision-server.ts';
import { defaultPolicy, startLocalStack, type LocalStack } from '../stack/local-stack.ts';
import { documentedEventFields } from '../support/documented.ts';
import { recordSecret } from '../support/secrets.ts';
import { runSidecarCommand, startSidecar, type LogLine } from '../support/sidecar-process.ts';
import { healthPort, snapshotDir, visibleNames } from './support/harness.ts';

const rgw = rgwUsable();
const requireRgw = process.env.STSTEST_REQUIRE_RGW === '1';
const skipReason = 'reason' in rgw ? rgw.reason : undefined;
if (skipReason && !requireRgw) console.warn(`[fail-closed.test] skipped: ${skipReason}`);

/** The JSON line's own fields: the logger's envelope (README: "a constant `msg`") is not in the table. */
const fieldsOf = (line: LogLine): string[] =>
  Object.keys(line)
    .filter((k) => !['level', 'time', 'pid', 'hostname', 'service', 'version', 'msg', 'event'].includes(k))
    .sort();

describe.skipIf(skipReason !== undefined && !requireRgw)(
  `fail closed over an existing set, at the real Ceph RGW${skipReason ? ` (${skipReason})` : ''}`,
  () => {
    let s: LocalStack;
    const allow = (): PolicyFile => defaultPolicy(s.tenant, s.bucket, s.prefix);
    /** The default rule, changed as a decision server might answer. */
    const allowWith = (extra: Partial<PolicyFile['rules'][number]>): PolicyFile => ({
      rules: [{ ...allow().rules[0]!, ...extra }],
    });

    beforeAll(async () => {
      if (skipReason !== undefined) throw new Error(`STSTEST_REQUIRE_RGW=1 but ${skipReason}`);
      s = await startLocalStack({ sts: 'ceph-rgw' });
    }, 180_000);
    afterAll(async () => {
      await s?.close();
    });
    beforeEach(async () => {
      await s.writePolicy(allow());
      await s.rotateToken();
    });

    /** `once` with the allow policy: a real RGW set in the directory; returns its lease.acquired line. */
    const writeSet = async (): Promise<LogLine> => {
      const r = await runSidecarCommand(s.env, ['once']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.lines.map((l) => l.event)).toEqual(['lease.acquired']);
      const disk = await snapshotDir(s.outputDir);
      expect(visibleNames(disk)).toHaveLength(5);
      recordSecret((await readFile(path.join(s.outputDir, 'secret-key'), 'utf8')).trim());
      recordSecret((await readFile(path.join(s.outputDir, 'session-token'), 'utf8')).trim());
      return r.lines[0]!;
    };

    it('once logs the lease.acquired fields the README lists (audit fields included), and no next_refresh', async () => {
      const acquired = await writeSet();
      expect(fieldsOf(acquired)).toEqual(
        documentedEventFields('lease.acquired', { oneShot: true, identity: false }),
      );
      expect(acquired).not.toHaveProperty('next_refresh');
      expect(acquired).toMatchObject({ workload_subject: s.subject, backend: 'ceph-rgw' });
    });

    it.each<[string, string, () => Promise<void>]>([
      ['an explicit deny', 'ERR_POLICY_DENIED', () => s.writePolicy({ rules: [] })],
      [
        'an allow of none of the asked actions',
        'ERR_NOTHING_GRANTED',
        () => s.writePolicy(allowWith({ answer_actions: ['delete'] })),
      ],
      [
        'a TTL below the STS minimum',
        'ERR_TTL_BELOW_STS_MINIMUM',
        () => s.writePolicy(allowWith({ answer_ttl_seconds: 60 })),
      ],
      [
        'an obligation the sidecar cannot enforce',
        'ERR_POLICY_OBLIGATION_UNSUPPORTED',
        () => s.writePolicy(allowWith({ obligations: { geo_fence: 'eu' } })),
      ],
      [
        'a token of another tenant',
        'ERR_TOKEN_TENANT_MISMATCH',
        async () => {
          await s.rotateToken({ tenant: 'team-b' });
        },
      ],
    ])('%s: once removes the set before exit 4 (%s)', async (_name, code, deny) => {
      const acquired = await writeSet();
      await deny();
      const r = await runSidecarCommand(s.env, ['once']);
      expect(r.code, r.stderr).toBe(4);
      expect(r.stderr).toContain(`(${code})`);
      const after = await snapshotDir(s.outputDir);
      expect(visibleNames(after)).toEqual([]);
      expect(Object.keys(after.entries)).toEqual([]);
      expect(r.lines.map((l) => l.event)).toEqual(['lease.revoked', 'lease.denied']);
      expect(r.lines[0]).toEqual(
        expect.objectContaining({ reason: 'denied', access_key_id: acquired.access_key_id }),
      );
      expect(fieldsOf(r.lines[1]!)).toEqual(
        documentedEventFields('lease.denied', { oneShot: true, identity: false }).filter(
          // Only a flex-auth deny carries a decision id.
          (f) => f !== 'decision_id' || code === 'ERR_POLICY_DENIED',
        ),
      );
      expect(r.lines[1]).toMatchObject({ code });
    });

    it('a failure (exit 3, the STS unreachable) keeps the set and says until when', async () => {
      const acquired = await writeSet();
      const before = await snapshotDir(s.outputDir);
      const r = await runSidecarCommand({ ...s.env, STS_SIDECAR_STS_ENDPOINT: 'http://127.0.0.1:9' }, [
        'once',
      ]);
      expect(r.code, r.stderr).toBe(3);
      expect(r.lines.map((l) => l.event)).toEqual(['lease.failed']);
      expect(r.lines[0]).toMatchObject({ code: 'ERR_STS_UNREACHABLE', set_kept_until: acquired.expiration });
      expect(r.lines[0]).not.toHaveProperty('next_attempt');
      expect(await snapshotDir(s.outputDir)).toEqual(before);
    });

    it('a daemon restarted onto a set it is denied at once removes it, and its endpoint stops serving the copy', async () => {
      const acquired = await writeSet();
      await s.writePolicy({ rules: [] });
      const tokenFile = path.join(s.dir, 'endpoint', 'token');
      const p = startSidecar(
        {
          ...s.env,
          STS_SIDECAR_BACKOFF_INITIAL_SECONDS: '30',
          STS_SIDECAR_CREDENTIALS_ENDPOINT: '127.0.0.1:0',
          STS_SIDECAR_CREDENTIALS_ENDPOINT_TOKEN_FILE: tokenFile,
        },
        ['run'],
        { label: 'fail-closed-restart' },
      );
      try {
        await healthPort(p);
        const started = p.lines.find((l) => l.event === 'sidecar.started')!;
        const denied = await p.waitForEvent('lease.denied', 20_000);
        expect(denied).toMatchObject({ code: 'ERR_POLICY_DENIED', attempt: 1 });
        const revoked = p.lines.find((l) => l.event === 'lease.revoked');
        expect(revoked).toMatchObject({ reason: 'denied', access_key_id: acquired.access_key_id });
        expect(p.lines.indexOf(revoked!)).toBeLessThan(p.lines.indexOf(denied));
        const after = await snapshotDir(s.outputDir);
        expect(visibleNames(after)).toEqual([]);
        expect(Object.keys(after.entries)).toEqual([]);
        const token = await readFile(tokenFile, 'utf8');
        recordSecret(token);
        const res = await fetch(`http://${String(started.credentials_endpoint)}/v1/credentials`, {
          headers: { authorization: token },
          signal: AbortSignal.timeout(5000),
        });
        expect(res.status).toBe(503);
        expect(((await res.json()) as { code: string }).code).toBe('ERR_ENDPOINT_NO_CREDENTIALS');
      } finally {
        p.kill();
        await p.exited;
      }
    });
  },
);
