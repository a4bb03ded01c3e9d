/**
 * Issue 19: one sidecar, two named leases on different prefixes (on Ceph RGW also two roles), against every
 * real STS backend. Each lease's keys work inside its own grant and are refused in the other's; boto3 and
 * aioboto3 pick a lease by profile name in the sidecar's AWS config file; the JS SDK gets each lease from
 * the endpoint by path; a deny for one lease removes only its directory while the other keeps renewing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setupTenant } from '../stack/ceph-rgw.ts';
import type { LocalStack } from '../stack/local-stack.ts';
import { namedLeasesEnv } from '../support/named-leases.ts';
import { recordSecret } from '../support/secrets.ts';
import { startSidecar, type LogLine, type SidecarProcess } from '../support/sidecar-process.ts';
import { boto3Available, runBoto3, runJsConsumer, runProcess } from '../consumers/support.ts';
import { BACKENDS } from './backends.ts';
import { FAST_RETRY_ENV, outcome, readDiskSet, type DiskSet } from './support.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const BUCKET = 'conf-leases';
const LEASES = ['alpha', 'beta'] as const;
type Lease = (typeof LEASES)[number];
const boto3 = boto3Available();
const venv = JSON.parse(
  execFileSync('bash', [path.join(here, '..', 'stack', 'consumers.sh'), 'where'], { encoding: 'utf8' }),
) as { python: string };
const aioboto3Reason = existsSync(venv.python)
  ? undefined
  : `the consumers venv is not installed (bash test/stack/consumers.sh install): ${venv.python}`;
const requireConsumers = process.env.STSTEST_REQUIRE_CONSUMERS === '1';

const prefixOf = (stack: LocalStack, lease: Lease) => `${stack.prefix}${lease}/`;
const other = (lease: Lease): Lease => (lease === 'alpha' ? 'beta' : 'alpha');
const byLease = (lease: Lease) => (l: LogLine) => l.lease === lease;

for (const b of BACKENDS) {
  describe.skipIf(b.skip)(
    `[${b.name}] two named leases in one sidecar${b.gate('conformance/leases')}`,
    () => {
      let stack: LocalStack;
      let home: string;
      let sidecar: SidecarProcess;
      let roles: Record<Lease, string | undefined>;
      let endpoint: string;
      let health: string;
      const dirOf = (lease: Lease) => path.join(stack.outputDir, lease);
      const sets = {} as Record<Lease, DiskSet>;

      beforeAll(async () => {
        b.assertUsable();
        stack = await b.start({ bucket: BUCKET });
        home = await mkdtemp(path.join(os.tmpdir(), 'leases-home-'));
        // On RGW the second lease assumes a second role (its own trust and coarse role policy).
        const second = stack.rgw
          ? await setupTenant(stack.rgw.stack, {
              issuerUrl: stack.issuer.url,
              thumbprint: stack.issuer.thumbprint,
              audience: stack.audience,
              bucket: BUCKET,
              roleName: `${stack.rgw.tenant.roleName}-b`,
            })
          : undefined;
        roles = {
          alpha: stack.env.STS_SIDECAR_ROLE_ARN,
          beta: second?.roleArn ?? stack.env.STS_SIDECAR_ROLE_ARN,
        };
        const { STS_SIDECAR_ROLE_ARN: _role, ...env } = stack.env;
        const shared = await namedLeasesEnv(
          env,
          stack.dir,
          LEASES.map((name) => ({
            name,
            bucket: BUCKET,
            prefix: prefixOf(stack, name),
            actions: ['read', 'write', 'list'],
            roleArn: roles[name],
          })),
        );
        const tokenFile = path.join(stack.dir, 'endpoint-token');
        sidecar = startSidecar(
          {
            ...shared,
            ...FAST_RETRY_ENV,
            STS_SIDECAR_CREDENTIALS_ENDPOINT: '127.0.0.1:0',
            STS_SIDECAR_CREDENTIALS_ENDPOINT_TOKEN_FILE: tokenFile,
          },
          ['run'],
          { label: `leases-${b.name}` },
        );
        const started = await sidecar.waitForEvent('sidecar.started', 20_000);
        endpoint = `http://${String(started.credentials_endpoint)}/v1/credentials`;
        health = `http://${String(started.listen)}`;
        for (const lease of LEASES) {
          await sidecar.waitFor(
            (l) => l.event === 'lease.acquired' && l.lease === lease,
            30_000,
            `${lease} acquired`,
          );
          sets[lease] = await readDiskSet(dirOf(lease));
        }
        recordSecret(await readFile(tokenFile, 'utf8'));
      });
      afterAll(async () => {
        sidecar?.kill();
        await sidecar?.exited;
        await stack?.close();
        if (home) await rm(home, { recursive: true, force: true });
      });

      it('each lease has its own set, in its own directory, granted on its own prefix (RGW: its own role)', () => {
        expect(sets.alpha.accessKeyId).not.toBe(sets.beta.accessKeyId);
        for (const lease of LEASES) {
          const acquired = sidecar.lines.find((l) => l.event === 'lease.acquired' && l.lease === lease);
          expect(acquired).toMatchObject({ lease, bucket: BUCKET, prefix: prefixOf(stack, lease) });
        }
        if (stack.rgw) expect(roles.alpha).not.toBe(roles.beta);
      });

      it("each lease's keys work inside its grant and are refused in the other's", async () => {
        for (const lease of LEASES) {
          const s3 = b.s3(stack, sets[lease]);
          const put = (l: Lease) =>
            outcome(
              s3.send(
                new PutObjectCommand({ Bucket: BUCKET, Key: `${prefixOf(stack, l)}by-${lease}`, Body: 'x' }),
              ),
            );
          expect(await put(lease), lease).toBe('ok');
          expect(await put(other(lease)), lease).toBe('AccessDenied 403');
          s3.destroy();
        }
      });

      it.skipIf(!boto3.ok && !requireConsumers)(
        'boto3 picks a lease by profile name in the generated AWS config file',
        async () => {
          if (!boto3.ok) throw new Error(boto3.reason);
          for (const lease of LEASES) {
            const r = await runBoto3({
              HOME: home,
              CONSUMER_MODE: 'profile',
              CONSUMER_ENDPOINT: b.endpoint(stack),
              CONSUMER_BUCKET: BUCKET,
              AWS_CONFIG_FILE: path.join(stack.outputDir, 'aws-config'),
              AWS_SHARED_CREDENTIALS_FILE: path.join(home, 'no-credentials'),
              AWS_PROFILE: lease,
              CONSUMER_KEY: `${prefixOf(stack, lease)}boto3.txt`,
              CONSUMER_FORBIDDEN_KEY: `${prefixOf(stack, other(lease))}boto3.txt`,
            });
            expect(r.code, r.stderr).toBe(0);
            expect(r.json).toMatchObject({
              put: 'ok',
              access_key_id: sets[lease].accessKeyId,
              forbidden_put: 'AccessDenied 403',
            });
          }
        },
      );

      it.skipIf(aioboto3Reason !== undefined && !requireConsumers)(
        'aioboto3 picks a lease by profile name in the generated AWS config file',
        async () => {
          if (aioboto3Reason) throw new Error(`STSTEST_REQUIRE_CONSUMERS=1 but ${aioboto3Reason}`);
          const run = (lease: Lease, keyLease: Lease) =>
            runProcess(
              venv.python,
              [path.join(here, '..', 'consumers', 'aioboto3_consumer.py')],
              {
                HOME: home,
                PYTHONDONTWRITEBYTECODE: '1',
                CONSUMER_MODE: 'profile',
                CONSUMER_ENDPOINT: b.endpoint(stack),
                CONSUMER_BUCKET: BUCKET,
                CONSUMER_LOOP_SECONDS: '1',
                AWS_CONFIG_FILE: path.join(stack.outputDir, 'aws-config'),
                AWS_SHARED_CREDENTIALS_FILE: path.join(home, 'no-credentials'),
                AWS_EC2_METADATA_DISABLED: 'true',
                AWS_PROFILE: lease,
                CONSUMER_KEY: `${prefixOf(stack, keyLease)}aioboto3`,
              },
              60_000,
            );
          for (const lease of LEASES) {
            const own = await run(lease, lease);
            expect(own.code, own.stderr).toBe(0);
            const calls = (own.json?.calls ?? []) as { key: string; ok: boolean }[];
            expect(calls.length).toBeGreaterThan(0);
            expect(
              calls.every((c) => c.ok && c.key === sets[lease].accessKeyId),
              JSON.stringify(calls),
            ).toBe(true);
            const foreign = await run(lease, other(lease));
            const refused = (foreign.json?.calls ?? []) as { ok: boolean; err?: string }[];
            expect(refused.length).toBeGreaterThan(0);
            expect(
              refused.every((c) => !c.ok && c.err === 'ClientError'),
              JSON.stringify(refused),
            ).toBe(true);
          }
        },
      );

      it('the endpoint serves each lease to the JS SDK by path; the plain path is 404', async () => {
        const tokenFile = path.join(stack.dir, 'endpoint-token');
        for (const lease of LEASES) {
          const r = await runJsConsumer({
            HOME: home,
            CONSUMER_ENDPOINT: b.endpoint(stack),
            CONSUMER_BUCKET: BUCKET,
            AWS_CONFIG_FILE: path.join(home, 'no-config'),
            AWS_SHARED_CREDENTIALS_FILE: path.join(home, 'no-credentials'),
            AWS_CONTAINER_CREDENTIALS_FULL_URI: `${endpoint}/${lease}`,
            AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile,
            CONSUMER_KEY: `${prefixOf(stack, lease)}js-sdk.txt`,
          });
          expect(r.code, r.stderr).toBe(0);
          expect(r.json).toMatchObject({ put: 'ok', access_key_id: sets[lease].accessKeyId });
        }
        const token = await readFile(tokenFile, 'utf8');
        const plain = await fetch(endpoint, { headers: { authorization: token } });
        expect(plain.status).toBe(404);
      });

      it('/readyz lists each lease; metrics carry the lease label', async () => {
        const ready = await fetch(`${health}/readyz`);
        expect(ready.status).toBe(200);
        expect(await ready.json()).toMatchObject({
          ready: true,
          leases: { alpha: { ready: true }, beta: { ready: true } },
        });
        const metrics = await (await fetch(`${health}/metrics`)).text();
        for (const lease of LEASES) expect(metrics).toContain(`sts_sidecar_ready{lease="${lease}"} 1`);
      });

      it(
        'a deny for one lease removes only its directory; the other keeps renewing',
        { timeout: 60_000 },
        async () => {
          const before = await readdir(dirOf('alpha'));
          await stack.writePolicy({
            rules: [
              {
                tenant: stack.tenant,
                subject: '*',
                bucket: BUCKET,
                prefix: prefixOf(stack, 'alpha'),
                actions: ['read', 'write', 'list'],
                max_ttl_seconds: 3600,
              },
            ],
          });
          for (let round = 0; round < 2; round++) {
            const from = sidecar.lines.length;
            sidecar.child.kill('SIGHUP');
            const after = (event: string, lease: Lease) =>
              sidecar.waitFor(
                (l) => l.event === event && l.lease === lease && sidecar.lines.indexOf(l) >= from,
                20_000,
                `${lease} ${event}`,
              );
            await after('lease.denied', 'beta');
            await after('lease.renewed', 'alpha');
          }
          expect(sidecar.lines.filter(byLease('beta')).some((l) => l.event === 'lease.revoked')).toBe(true);
          expect(sidecar.lines.filter(byLease('alpha')).some((l) => l.event === 'lease.revoked')).toBe(false);
          expect(await readdir(dirOf('beta'))).toEqual([]);
          expect((await readdir(dirOf('alpha'))).filter((n) => !n.startsWith('..'))).toEqual(
            before.filter((n) => !n.startsWith('..')),
          );
          const renewed = await readDiskSet(dirOf('alpha'));
          const s3 = b.s3(stack, renewed);
          expect(
            await outcome(
              s3.send(
                new PutObjectCommand({
                  Bucket: BUCKET,
                  Key: `${prefixOf(stack, 'alpha')}after-deny`,
                  Body: 'x',
                }),
              ),
            ),
          ).toBe('ok');
          s3.destroy();
          const ready = await fetch(`${health}/readyz`);
          expect(ready.status).toBe(503);
          expect(await ready.json()).toMatchObject({
            ready: false,
            leases: { alpha: { ready: true }, beta: { ready: false } },
          });
        },
      );
    },
  );
}
