// The Secret sink against a real kube-apiserver: the chart's own Secret, Role and RoleBinding (rendered by
// helm, created for real), a real service-account token from the TokenRequest API, and the sink as the app
// wires it (CA file, token file, namespace file). Rotation, deny, expiry, a concurrent writer, RBAC limits,
// and the API server gone or hung; `once` over the Secret, and a write of unknown outcome followed by a deny.
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { rootCertificates } from 'node:tls';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubernetesSecretSink } from '../../src/adapters/credential-secret.ts';
import { TransportError, type HttpTransport } from '../../src/adapters/http-transport.ts';
import { createSecretSink } from '../../src/adapters/secret-sink-wiring.ts';
import { systemClock } from '../../src/adapters/system-clock.ts';
import { startDaemon } from '../../src/app.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { CredentialSet } from '../../src/domain/credentials.ts';
import { PolicyDeniedError, StsError } from '../../src/errors.ts';
import type { LeaseEvent } from '../../src/lease-events.ts';
import { LeaseLoop } from '../../src/lease-loop.ts';
import { createLogger } from '../../src/logger.ts';
import { recordOutput, recordSecret } from '../support/secrets.ts';
import { runSidecarCommand } from '../support/sidecar-process.ts';
import { startLocalStack } from '../stack/local-stack.ts';
import { helmSkipReason, helmWorkspace, renderedDocs, skipHelm } from '../k8s/helm.ts';
import {
  KubeAdmin,
  kubeGate,
  kubeSkipReason,
  pauseApiserver,
  readStack,
  skipKube,
  uniqueNamespace,
  verdict,
} from '../stack/kube.ts';

const gate = kubeGate('secret-sink.test.ts');
const KEYS = ['ACCESS_KEY_ID', 'ACCESS_SECRET_KEY', 'ACCESS_SESSION_TOKEN', 'EXPIRATION'];
const RELEASE = 'cnpg';
const SECRET = 'cnpg-sts-credentials';
const SA = 'backup-sa';

function set(tag: string, expiresAtMs: number): CredentialSet {
  // Fake values shaped like real ones; the secret scan learns them, so none may reach a log or message.
  const s = {
    accessKeyId: `AKIA${tag.toUpperCase().padEnd(16, 'X')}`,
    secretAccessKey: `secret-${tag}-${'s'.repeat(24)}`,
    sessionToken: `session-${tag}-${'t'.repeat(64)}`,
    expiresAtMs,
  };
  recordSecret(s.secretAccessKey);
  recordSecret(s.sessionToken);
  return s;
}

/** Every error message the sink produces goes to the secret scan. */
async function failure(p: Promise<unknown>): Promise<Error & { code?: string; committed?: boolean }> {
  const err = await p.then(
    () => new Error('expected a failure'),
    (e: unknown) => e as Error,
  );
  recordOutput('secret-sink-errors', `${err.message}\n`);
  return err;
}

const sinkKeys = {
  accessKeyId: 'ACCESS_KEY_ID',
  secretAccessKey: 'ACCESS_SECRET_KEY',
  sessionToken: 'ACCESS_SESSION_TOKEN',
  expiration: 'EXPIRATION',
};

describe.skipIf(skipKube || skipHelm)(
  `the Secret sink against a real kube-apiserver${gate}${helmSkipReason && !skipKube ? ` (helm unavailable: ${helmSkipReason})` : ''}`,
  () => {
    let admin: KubeAdmin;
    let ns: string;
    let dir: string;
    let tokenFile: string;

    const secretData = async (name = SECRET): Promise<Record<string, string>> => {
      const r = await admin.request('GET', `/api/v1/namespaces/${ns}/secrets/${name}`);
      expect(r.status, verdict(r)).toBe(200);
      const data = (r.body.data ?? {}) as Record<string, string>;
      return Object.fromEntries(
        Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
      );
    };
    const resourceVersion = async (): Promise<string> => {
      const r = await admin.request('GET', `/api/v1/namespaces/${ns}/secrets/${SECRET}`);
      return String((r.body.metadata as { resourceVersion: string }).resourceVersion);
    };
    /** Merges keys into the Secret as another writer would (admin, its own read-modify-write). */
    const otherWriter = async (extra: Record<string, string>): Promise<void> => {
      const r = await admin.request('GET', `/api/v1/namespaces/${ns}/secrets/${SECRET}`);
      const body = r.body as { data?: Record<string, string> };
      const data = { ...(body.data ?? {}) };
      for (const [k, v] of Object.entries(extra)) data[k] = Buffer.from(v).toString('base64');
      const put = await admin.request('PUT', `/api/v1/namespaces/${ns}/secrets/${SECRET}`, { ...body, data });
      expect(put.status, verdict(put)).toBe(200);
    };

    /** The sink exactly as the daemon wires it from the configuration. */
    const wiredSink = (overrides: Record<string, string> = {}, timeoutMs = 5000): KubernetesSecretSink => {
      const config = loadConfig({
        STS_SIDECAR_TENANT: 'team-a',
        STS_SIDECAR_BUCKET: 'backups',
        STS_SIDECAR_FLEX_AUTH_URL: 'https://flex-auth.invalid/v1/decisions',
        STS_SIDECAR_STS_ENDPOINT: 'https://sts.invalid',
        STS_SIDECAR_SINK: 'secret',
        STS_SIDECAR_SECRET_NAME: SECRET,
        STS_SIDECAR_KUBE_API_URL: admin.stack.url,
        STS_SIDECAR_KUBE_TOKEN_FILE: tokenFile,
        STS_SIDECAR_KUBE_CA_FILE: admin.stack.caFile,
        ...overrides,
      });
      if (!config.secret) throw new Error('sink secret not configured');
      return createSecretSink(config.secret, { readTextFile: (p) => readFileSync(p, 'utf8'), timeoutMs });
    };

    /** A sink for the chart's Secret over `transport` (where a test injects its fault), as the pod's account. */
    const sinkOver = (
      transport: HttpTransport,
      limits: { timeoutMs?: number; operationTimeoutMs?: number } = {},
    ): KubernetesSecretSink =>
      new KubernetesSecretSink({
        apiUrl: admin.stack.url,
        namespace: ns,
        name: SECRET,
        keys: sinkKeys,
        transport,
        readToken: async () => readFileSync(tokenFile, 'utf8'),
        timeoutMs: 5000,
        ...limits,
      });

    beforeAll(async () => {
      if (kubeSkipReason) throw new Error(`STSTEST_REQUIRE_KUBE=1 but ${kubeSkipReason}`);
      admin = new KubeAdmin(readStack());
      ns = uniqueNamespace('secret-sink');
      await admin.createNamespace(ns);
      // The chart's manifests for sink.type secret, created for real: ServiceAccount, Secret, Role, RoleBinding.
      const ws = await helmWorkspace();
      try {
        const r = await ws.run([
          'template',
          RELEASE,
          join(ws.helmDir, 'example-app'),
          '--namespace',
          ns,
          '-f',
          ws.valuesFile('sink', {
            serviceAccount: { create: true, name: SA },
            stsSidecar: { sink: { type: 'secret' } },
          }),
        ]);
        expect(r.code, r.stderr).toBe(0);
        for (const { source, doc } of renderedDocs(r.stdout, 'secret-sink')) {
          if (doc.kind === 'Deployment') continue; // nothing would run it
          const c = await admin.create(doc, ns, { dryRun: false });
          expect(c.status, `${source}: ${verdict(c)}`).toBe(201);
        }
      } finally {
        ws.dispose();
      }
      // A second Secret the Role does not name: the sink must not be able to touch it.
      const other = await admin.create(
        { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'unrelated' }, data: {} },
        ns,
        { dryRun: false },
      );
      expect(other.status, verdict(other)).toBe(201);
      // The pod's service-account mount, as the kubelet lays it out: token, ca.crt, namespace.
      dir = mkdtempSync(join(tmpdir(), 'sts-sa-'));
      tokenFile = join(dir, 'token');
      const saToken = await admin.serviceAccountToken(ns, SA);
      recordSecret(saToken);
      writeFileSync(tokenFile, saToken);
      writeFileSync(join(dir, 'namespace'), ns);
    });
    afterAll(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('starts empty: prepare finds no set in the freshly created Secret', async () => {
      const sink = wiredSink();
      expect(sink.target).toBe(`${ns}/${SECRET}`);
      await expect(sink.prepare()).resolves.toBeUndefined();
    });

    it('writes the whole set in one update, and prepare reads its expiry back', async () => {
      const sink = wiredSink();
      const expiresAtMs = Date.parse('2030-01-01T00:00:00Z');
      await sink.write(set('one', expiresAtMs));
      const data = await secretData();
      expect(Object.keys(data).sort()).toEqual([...KEYS].sort());
      expect(data.ACCESS_KEY_ID).toBe(set('one', 0).accessKeyId);
      expect(data.ACCESS_SECRET_KEY).toBe(set('one', 0).secretAccessKey);
      expect(data.ACCESS_SESSION_TOKEN).toBe(set('one', 0).sessionToken);
      expect(data.EXPIRATION).toBe('2030-01-01T00:00:00Z');
      await expect(sink.prepare()).resolves.toEqual({ expiresAtMs });
    });

    it('a rotation is exactly one update: every version a reader can see holds one complete set', async () => {
      const sink = wiredSink();
      const before = Number(await resourceVersion());
      const watch = rawWatch(admin, ns, before);
      await sink.write(set('two', Date.parse('2030-01-02T00:00:00Z')));
      const seen = await watch;
      expect(seen.map((e) => e.type)).toEqual(['MODIFIED']);
      const data = seen[0]?.data ?? {};
      expect(data.ACCESS_KEY_ID).toBe(set('two', 0).accessKeyId);
      expect(data.ACCESS_SESSION_TOKEN).toBe(set('two', 0).sessionToken);
      expect(data.EXPIRATION).toBe('2030-01-02T00:00:00Z');
    });

    it('a concurrent writer between read and update: 409, read again, both changes kept', async () => {
      let puts = 0;
      const meddling: HttpTransport = async (req) => {
        if (req.method === 'PUT' && puts++ === 0) await otherWriter({ 'backup.conf': 'kept' });
        return admin.transport(req);
      };
      const sink = sinkOver(meddling);
      await sink.write(set('three', Date.parse('2030-01-03T00:00:00Z')));
      expect(puts).toBe(2);
      const data = await secretData();
      expect(data['backup.conf']).toBe('kept');
      expect(data.ACCESS_KEY_ID).toBe(set('three', 0).accessKeyId);
    });

    it('a writer that always gets in between: ERR_SECRET_CONFLICT, and the previous set stays whole', async () => {
      let n = 0;
      const sink = sinkOver(async (req) => {
        if (req.method === 'PUT') await otherWriter({ counter: String(n++) });
        return admin.transport(req);
      });
      await expect(sink.write(set('lost', Date.parse('2030-01-04T00:00:00Z')))).rejects.toMatchObject({
        code: 'ERR_SECRET_CONFLICT',
        retryable: true,
      });
      expect(n).toBe(3);
      const data = await secretData();
      expect(data.ACCESS_KEY_ID).toBe(set('three', 0).accessKeyId);
      expect(data.ACCESS_SECRET_KEY).toBe(set('three', 0).secretAccessKey);
    });

    it('RBAC is exactly one Secret: another Secret is forbidden, and so are list and create', async () => {
      const other = wiredSink({ STS_SIDECAR_SECRET_NAME: 'unrelated' });
      await expect(other.write(set('x', Date.now() + 3600_000))).rejects.toMatchObject({
        code: 'ERR_SECRET_FORBIDDEN',
        message: expect.stringMatching(/unrelated.*HTTP 403 Forbidden.*needs get/),
      });
      const token = readFileSync(tokenFile, 'utf8');
      for (const [method, path] of [
        ['GET', `/api/v1/namespaces/${ns}/secrets`],
        ['POST', `/api/v1/namespaces/${ns}/secrets`],
      ] as const) {
        const res = await admin.transport({
          url: `${admin.stack.url}${path}`,
          method,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          ...(method === 'POST' ? { body: JSON.stringify({ metadata: { name: 'new' } }) } : {}),
          signal: AbortSignal.timeout(5000),
        });
        expect(res.status, `${method} ${path}`).toBe(403);
      }
    });

    it('a bad token is ERR_SECRET_FORBIDDEN (401); a missing Secret ERR_SECRET_NOT_FOUND; no value in either message', async () => {
      const badDir = mkdtempSync(join(tmpdir(), 'sts-sa-bad-'));
      try {
        writeFileSync(join(badDir, 'token'), 'not-a-token');
        writeFileSync(join(badDir, 'namespace'), ns);
        const bad = wiredSink({ STS_SIDECAR_KUBE_TOKEN_FILE: join(badDir, 'token') });
        const err = await bad.write(set('y', Date.now() + 3600_000)).catch((e: unknown) => e);
        expect(err).toMatchObject({
          code: 'ERR_SECRET_FORBIDDEN',
          message: expect.stringMatching(/HTTP 401/),
        });
        expect(String((err as Error).message)).not.toContain('not-a-token');
      } finally {
        rmSync(badDir, { recursive: true, force: true });
      }
      const missing = new KubernetesSecretSink({
        apiUrl: admin.stack.url,
        namespace: ns,
        name: 'does-not-exist',
        keys: { accessKeyId: 'A', secretAccessKey: 'B', sessionToken: 'C', expiration: 'D' },
        transport: admin.transport,
        readToken: async () => readFileSync(admin.stack.tokenFile, 'utf8'),
        timeoutMs: 5000,
      });
      const err = await missing.write(set('z', Date.now() + 3600_000)).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_SECRET_NOT_FOUND' });
      expect(String((err as Error).message)).not.toContain(set('z', 0).secretAccessKey);
    });

    it('the API server down (refused) or hung (deadline): ERR_SECRET_UNAVAILABLE, retryable', async () => {
      const refused = wiredSink({ STS_SIDECAR_KUBE_API_URL: 'https://127.0.0.1:1' });
      await expect(refused.write(set('d', Date.now() + 3600_000))).rejects.toMatchObject({
        code: 'ERR_SECRET_UNAVAILABLE',
        retryable: true,
        message: expect.stringMatching(/unavailable \(network: ECONNREFUSED/),
        committed: false,
      });
      const hung = wiredSink({}, 800);
      await pauseApiserver(admin.stack, true);
      try {
        await expect(hung.write(set('h', Date.now() + 3600_000))).rejects.toMatchObject({
          code: 'ERR_SECRET_UNAVAILABLE',
          message: expect.stringMatching(/timeout/),
          // The read hung, so no update was ever sent: nothing to track.
          committed: false,
        });
      } finally {
        await pauseApiserver(admin.stack, false);
      }
      // The set from before the outage is untouched.
      expect((await secretData()).ACCESS_KEY_ID).toBe(set('three', 0).accessKeyId);
    });

    it('a PUT whose outcome is unknown (connection broken after sending, or the deadline) is committed: true', async () => {
      // The update reaches the real API server; the answer is then lost, as on a reset connection.
      const broken: HttpTransport = async (req) => {
        const res = await admin.transport(req);
        if (req.method !== 'PUT') return res;
        const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
        throw new TransportError('network', 'ECONNRESET: read ECONNRESET', { cause: reset });
      };
      const sink = sinkOver(broken);
      const err = await failure(sink.write(set('reset', Date.parse('2030-01-05T00:00:00Z'))));
      expect(err).toMatchObject({ code: 'ERR_SECRET_UNAVAILABLE', committed: true });
      expect(err.message).toMatch(/may have been applied/);
      // It did land: that is why the loop must keep tracking it.
      expect((await secretData()).ACCESS_KEY_ID).toBe(set('reset', 0).accessKeyId);

      // The API server stops answering after the read: the PUT runs into its deadline.
      const hangsOnPut = sinkOver(
        async (req) => {
          if (req.method === 'PUT') await pauseApiserver(admin.stack, true);
          return admin.transport(req);
        },
        { timeoutMs: 800 },
      );
      try {
        const hung = await failure(hangsOnPut.write(set('hung', Date.parse('2030-01-06T00:00:00Z'))));
        expect(hung).toMatchObject({ code: 'ERR_SECRET_UNAVAILABLE', committed: true });
        expect(hung.message).toMatch(/timeout/);
      } finally {
        await pauseApiserver(admin.stack, false);
      }
      // Put the usual set back for the tests after this one.
      await wiredSink().write(set('three', Date.parse('2030-01-03T00:00:00Z')));
    });

    it('a stop signal cuts a hung call short; one deadline bounds the whole update; a bounded wipe gives up', async () => {
      // Call deadline 60 s: only the stop signal or the operation deadline can end these early.
      const sink = wiredSink({}, 60_000);
      await pauseApiserver(admin.stack, true);
      try {
        const stop = new AbortController();
        const writing = failure(sink.write(set('stop', Date.now() + 3600_000), stop.signal));
        setTimeout(() => stop.abort(), 300);
        const started = Date.now();
        const err = await writing;
        expect(err).toMatchObject({
          code: 'ERR_SECRET_UNAVAILABLE',
          message: expect.stringMatching(/aborted/),
        });
        expect(Date.now() - started).toBeLessThan(30_000);

        // Already stopped: nothing is sent at all.
        const early = await failure(sink.write(set('stop', Date.now() + 3600_000), AbortSignal.abort()));
        expect(early).toMatchObject({
          code: 'ERR_SECRET_UNAVAILABLE',
          message: expect.stringMatching(/not sent \(stopped\)/),
        });
        expect(early.committed).not.toBe(true);

        const bounded = sinkOver(admin.transport, { timeoutMs: 60_000, operationTimeoutMs: 500 });
        const overall = await failure(bounded.remove());
        expect(overall).toMatchObject({
          code: 'ERR_SECRET_UNAVAILABLE',
          message: expect.stringMatching(/timeout/),
        });

        // The wipe on exit as the lease loop part runs it: bounded by its own signal, not by the sink's deadlines.
        const wipe = await failure(sink.remove(AbortSignal.timeout(300)));
        expect(wipe).toMatchObject({ code: 'ERR_SECRET_UNAVAILABLE' });
      } finally {
        await pauseApiserver(admin.stack, false);
      }
      expect((await secretData()).ACCESS_KEY_ID).toBe(set('three', 0).accessKeyId);
    });

    it('TLS is verified against the cluster CA: another CA is ERR_SECRET_UNAVAILABLE with a certificate error', async () => {
      const wrongCa = join(dir, 'wrong-ca.crt');
      writeFileSync(wrongCa, rootCertificates[0]!);
      const sink = wiredSink({ STS_SIDECAR_KUBE_CA_FILE: wrongCa });
      const err = await failure(sink.write(set('tls', Date.now() + 3600_000)));
      expect(err).toMatchObject({ code: 'ERR_SECRET_UNAVAILABLE', committed: false });
      expect(err.message).toMatch(/network: [A-Z_]*(CERT|SIGNATURE|ISSUER)[A-Z_]*: .*certificate/);
      expect((await secretData()).ACCESS_KEY_ID).toBe(set('three', 0).accessKeyId);
    });

    it('the daemon with STS_SIDECAR_SINK=secret: logs the Secret (no output_dir), and SIGTERM wipes it in the API server', async () => {
      await wiredSink().write(set('daemon', Date.parse('2030-01-07T00:00:00Z')));
      const lines: Record<string, unknown>[] = [];
      const logger = createLogger({
        level: 'info',
        destination: {
          write: (line: string) => {
            recordOutput('secret-sink-daemon', line);
            lines.push(JSON.parse(line) as Record<string, unknown>);
          },
        },
      });
      const config = loadConfig({
        STS_SIDECAR_TENANT: 'team-a',
        STS_SIDECAR_BUCKET: 'backups',
        // Nothing listens there: this run is about the sink, the leases fail and are retried.
        STS_SIDECAR_FLEX_AUTH_URL: 'https://127.0.0.1:1/v1/decisions',
        STS_SIDECAR_STS_ENDPOINT: 'https://127.0.0.1:1',
        STS_SIDECAR_ROLE_ARN: 'arn:aws:iam::123456789012:role/app',
        STS_SIDECAR_TOKEN_FILE: tokenFile,
        STS_SIDECAR_LISTEN: '127.0.0.1:0',
        STS_SIDECAR_WIPE_ON_EXIT: 'true',
        STS_SIDECAR_SINK: 'secret',
        STS_SIDECAR_SECRET_NAME: SECRET,
        STS_SIDECAR_KUBE_API_URL: admin.stack.url,
        STS_SIDECAR_KUBE_TOKEN_FILE: tokenFile,
        STS_SIDECAR_KUBE_CA_FILE: admin.stack.caFile,
      });
      const sigterm = new AbortController();
      const daemon = await startDaemon(
        { config, logger, readTextFile: (p) => readFileSync(p, 'utf8'), random: () => 0.5 },
        sigterm.signal,
      );
      try {
        const started = lines.find((l) => l.event === 'sidecar.started');
        expect(started).toMatchObject({ sink: 'secret', secret: `${ns}/${SECRET}` });
        expect(started).not.toHaveProperty('output_dir');
        for (let i = 0; i < 100 && !lines.some((l) => l.event === 'lease.failed'); i++) {
          await new Promise((r) => setTimeout(r, 100));
        }
        expect(lines.map((l) => l.event)).toContain('lease.failed');
      } finally {
        sigterm.abort();
        await daemon.done;
      }
      expect(lines.find((l) => l.event === 'sidecar.stopped')).toMatchObject({ wiped: true });
      expect(Object.keys(await secretData()).filter((k) => KEYS.includes(k))).toEqual([]);
    });

    /**
     * The lease loop over `sink` with stand-ins for flex-auth and the STS (these tests are about the sink); the
     * sink and the API server are real. `deny` and `issue` steer the stand-ins.
     */
    const standInLoop = (sink: KubernetesSecretSink, backoffInitialMs = 100) => {
      const c = {
        deny: false,
        issue: (): CredentialSet => set('loop', Date.now() + 3600_000),
        events: [] as LeaseEvent[],
      };
      const loop = new LeaseLoop(
        {
          tenant: 'team-a',
          bucket: 'backups',
          prefix: '',
          actions: ['read'],
          ttlSeconds: 3600,
          roleArn: undefined,
          sessionName: 'loop',
          backend: 'generic',
          durationLimits: { minSeconds: 1, maxSeconds: 3600 },
          schedule: {
            refreshFraction: 0.5,
            refreshJitter: 0,
            readyMarginMs: 0,
            backoffInitialMs,
            backoffMaxMs: 2 * backoffInitialMs,
          },
          attemptDeadlineMs: 10_000,
        },
        {
          tokens: {
            read: async () => ({
              raw: 'stand-in-token',
              issuer: 'https://issuer',
              subject: 'system:serviceaccount:ns:sa',
              audience: ['sts'],
              tenant: undefined,
              issuedAtMs: Date.now(),
              expiresAtMs: Date.now() + 3600_000,
            }),
          },
          policy: {
            decide: async () => {
              if (c.deny) throw new PolicyDeniedError('d-1', ['stand_in_deny']);
              return { decisionId: 'd-0', ttlSeconds: undefined, actions: undefined, obligations: undefined };
            },
          },
          issuer: {
            assume: async () => ({ credentials: c.issue(), requestId: 'r', assumedRoleArn: undefined }),
          },
          sink,
          clock: systemClock,
          random: () => 0.5,
          report: (e) => {
            c.events.push(e);
            recordOutput('secret-sink-lease-events', `${JSON.stringify(e)}\n`);
          },
        },
      );
      return { loop, c };
    };
    const until = async (what: () => Promise<boolean>): Promise<void> => {
      for (let i = 0; i < 100 && !(await what()); i++) await new Promise((r) => setTimeout(r, 100));
      expect(await what()).toBe(true);
    };

    it('the lease loop over the Secret: acquire, deny removes the four keys (others kept), expiry removes them too', async () => {
      const { loop, c } = standInLoop(wiredSink());
      const events = c.events;
      const stop = new AbortController();
      const running = loop.run(stop.signal);
      try {
        await otherWriter({ 'backup.conf': 'kept' });
        await until(async () => (await secretData()).ACCESS_KEY_ID === set('loop', 0).accessKeyId);
        c.deny = true;
        loop.refreshNow();
        await until(async () => (await secretData()).ACCESS_KEY_ID === undefined);
        expect(Object.keys(await secretData())).toContain('backup.conf');
        expect(Object.keys(await secretData()).filter((k) => KEYS.includes(k))).toEqual([]);
        expect(events.map((e) => e.event)).toEqual(
          expect.arrayContaining(['lease.acquired', 'lease.revoked', 'lease.denied']),
        );
        // Expiry: a short set, then the STS stand-in fails every renewal until the set runs out.
        c.deny = false;
        c.issue = () => set('short', Date.now() + 2500);
        loop.refreshNow();
        await until(async () => (await secretData()).ACCESS_KEY_ID === set('short', 0).accessKeyId);
        c.issue = () => {
          throw new StsError('ERR_STS_UNREACHABLE', 'stand-in STS down');
        };
        await until(async () => (await secretData()).ACCESS_KEY_ID === undefined);
        expect(events.map((e) => e.event)).toContain('lease.expired');
        expect(Object.keys(await secretData())).toContain('backup.conf');
        expect(Object.keys(await secretData()).filter((k) => KEYS.includes(k))).toEqual([]);
      } finally {
        stop.abort();
        await running;
      }
    });

    it('a write whose outcome is unknown (its answer past the deadline), then a deny: the set that landed is removed', async () => {
      let late = true;
      // The PUT reaches the real API server and is applied; its answer comes after the deadline, once.
      const sink = sinkOver(
        async (req) => {
          const res = await admin.transport(req);
          if (req.method !== 'PUT' || !late) return res;
          late = false;
          await new Promise<void>((resolve) => req.signal.addEventListener('abort', () => resolve()));
          throw new TransportError('timeout', 'deadline exceeded');
        },
        { timeoutMs: 800 },
      );
      // A long backoff: only the deny below (SIGHUP's refreshNow) makes the next attempt.
      const { loop, c } = standInLoop(sink, 60_000);
      c.issue = () => set('unknown', Date.now() + 3600_000);
      const stop = new AbortController();
      const running = loop.run(stop.signal);
      try {
        await until(async () => c.events.some((e) => e.event === 'lease.failed'));
        expect(c.events.find((e) => e.event === 'lease.failed')).toMatchObject({
          code: 'ERR_SECRET_UNAVAILABLE',
        });
        expect((await secretData()).ACCESS_KEY_ID).toBe(set('unknown', 0).accessKeyId);
        c.deny = true;
        loop.refreshNow();
        await until(async () => (await secretData()).ACCESS_KEY_ID === undefined);
        expect(Object.keys(await secretData()).filter((k) => KEYS.includes(k))).toEqual([]);
        expect(c.events.find((e) => e.event === 'lease.revoked')).toMatchObject({
          reason: 'denied',
          access_key_id: set('unknown', 0).accessKeyId,
        });
      } finally {
        stop.abort();
        await running;
      }
    });

    it('once over the Secret: a failure (exit 3) keeps the set; a deny removes the four keys (others kept) before exit 4', async () => {
      const local = await startLocalStack({ sts: 'auto' });
      try {
        const env = {
          ...local.env,
          STS_SIDECAR_SINK: 'secret',
          STS_SIDECAR_SECRET_NAME: SECRET,
          STS_SIDECAR_KUBE_API_URL: admin.stack.url,
          STS_SIDECAR_KUBE_TOKEN_FILE: tokenFile,
          STS_SIDECAR_KUBE_CA_FILE: admin.stack.caFile,
        };
        await otherWriter({ 'backup.conf': 'kept' });
        const first = await runSidecarCommand(env, ['once']);
        expect(first.code, first.stderr).toBe(0);
        const data = await secretData();
        recordSecret(data.ACCESS_SECRET_KEY!);
        recordSecret(data.ACCESS_SESSION_TOKEN!);
        expect(data.ACCESS_KEY_ID).toBe(first.lines.find((l) => l.event === 'lease.acquired')?.access_key_id);

        const failed = await runSidecarCommand({ ...env, STS_SIDECAR_STS_ENDPOINT: 'http://127.0.0.1:9' }, [
          'once',
        ]);
        expect(failed.code, failed.stderr).toBe(3);
        expect(await secretData()).toEqual(data);

        await local.writePolicy({ rules: [] });
        const denied = await runSidecarCommand(env, ['once']);
        expect(denied.code, denied.stderr).toBe(4);
        expect(denied.lines.map((l) => l.event)).toEqual(['lease.revoked', 'lease.denied']);
        expect(denied.lines[0]).toMatchObject({ reason: 'denied' });
        const after = await secretData();
        expect(Object.keys(after).filter((k) => KEYS.includes(k))).toEqual([]);
        expect(after['backup.conf']).toBe('kept');
      } finally {
        await local.close();
      }
    });
  },
);

interface SeenEvent {
  type: string;
  data: Record<string, string>;
}

/** Every change to the Secret from a resourceVersion on, for 2 s (a real watch, newline-delimited JSON). */
async function rawWatch(admin: KubeAdmin, ns: string, fromVersion: number): Promise<SeenEvent[]> {
  const res = await admin.transport({
    url: `${admin.stack.url}/api/v1/namespaces/${ns}/secrets?watch=1&fieldSelector=metadata.name%3D${SECRET}&resourceVersion=${fromVersion}&timeoutSeconds=2`,
    method: 'GET',
    headers: { authorization: `Bearer ${readFileSync(admin.stack.tokenFile, 'utf8').trim()}` },
    signal: AbortSignal.timeout(10_000),
  });
  return res.body
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const e = JSON.parse(line) as { type: string; object: { data?: Record<string, string> } };
      const data = Object.fromEntries(
        Object.entries(e.object.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
      );
      return { type: e.type, data };
    });
}
