/**
 * Issue 10: the libraries apps really use, against the real Ceph RGW, across renewals and a revocation.
 * One sidecar (60 s leases renewed every 12 s, the credentials endpoint on) and six consumers at once, each
 * doing PutObject once a second:
 *   - Debian's boto3 1.26 through the endpoint (AWS_CONTAINER_AUTHORIZATION_TOKEN: no token-file support);
 *   - a current boto3 (venv) through the endpoint with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE;
 *   - aioboto3 (venv) through the endpoint, and reading the four _REF files with the consistent-read recipe;
 *   - the AWS SDK for JavaScript v3 default chain (fromHttp, token file);
 *   - the AWS SDK for Go v2 default chain (token file).
 * Then flex-auth denies (SIGHUP): every consumer's requests must fail from then on; the JS SDK v3 only from the
 * expiry of the set it holds (its default chain refreshes in the background and keeps the cached set while a
 * refresh fails), so its loop runs past that expiry.
 * The venv and the Go program come from test/stack/consumers.sh install (CI: STSTEST_REQUIRE_CONSUMERS=1).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack, type LocalStack } from '../stack/local-stack.ts';
import { recordSecret } from '../support/secrets.ts';
import { startSidecar, type LogLine } from '../support/sidecar-process.ts';
import {
  assertRgwUsable,
  lowerRgwMinDuration,
  readDiskSet,
  rgwGate,
  skipRgw,
} from '../conformance/support.ts';
import { MINUTE_LEASES_ENV, SYSTEM_PYTHON, runProcess, type ConsumerResult } from './support.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const BUCKET = 'consumers-delivery';
const LOOP_SECONDS = 42;
const DENY_AFTER_SECONDS = 28;
/** Past the expiry of the last 60 s set written before the deny. */
const LONG_LOOP_SECONDS = DENY_AFTER_SECONDS + 75;
/** Consumers that keep a cached set until its expiry when a refresh fails. */
const REVOKED_AT_EXPIRY = new Set(['AWS SDK for JavaScript v3, default chain + token file']);

const where = JSON.parse(
  execFileSync('bash', [path.join(here, '..', 'stack', 'consumers.sh'), 'where'], { encoding: 'utf8' }),
) as { python: string; go: string };
const missing = [where.python, where.go, SYSTEM_PYTHON].filter((p) => !existsSync(p));
const requireConsumers = process.env.STSTEST_REQUIRE_CONSUMERS === '1';
const consumersReason =
  missing.length > 0
    ? `not installed (bash test/stack/consumers.sh install): ${missing.join(', ')}`
    : undefined;
if (consumersReason && !requireConsumers) console.warn(`[consumers/delivery] skipped: ${consumersReason}`);
const gate = rgwGate('consumers/delivery');

interface Call {
  t: number;
  key: string | null;
  ok: boolean;
  err?: string;
}

describe.skipIf(skipRgw || (consumersReason !== undefined && !requireConsumers))(
  `real SDK consumers through renewal and revocation${gate}`,
  () => {
    let stack: LocalStack;
    let home: string;
    let restore: (() => Promise<void>) | undefined;

    beforeAll(async () => {
      assertRgwUsable();
      if (consumersReason)
        throw new Error(`STSTEST_REQUIRE_CONSUMERS=1 but the consumers are ${consumersReason}`);
      stack = await startLocalStack({ sts: 'ceph-rgw', bucket: BUCKET });
      restore = await lowerRgwMinDuration(stack.rgw!.stack, 60);
      home = await mkdtemp(path.join(os.tmpdir(), 'consumer-home-'));
    });
    afterAll(async () => {
      await restore?.();
      await stack?.close();
      if (home) await rm(home, { recursive: true, force: true });
    });

    it('every consumer uses each renewed key and fails after the deny', { timeout: 180_000 }, async () => {
      const tokenFile = path.join(stack.dir, 'endpoint', 'token');
      const proc = startSidecar(
        {
          ...stack.env,
          ...MINUTE_LEASES_ENV,
          STS_SIDECAR_CREDENTIALS_ENDPOINT: '127.0.0.1:0',
          STS_SIDECAR_CREDENTIALS_ENDPOINT_TOKEN_FILE: tokenFile,
        },
        ['run'],
        { label: 'consumers-delivery' },
      );
      try {
        const started = await proc.waitForEvent('sidecar.started', 15_000);
        await proc.waitForEvent('lease.acquired', 20_000);
        await readDiskSet(stack.outputDir);
        const token = await readFile(tokenFile, 'utf8');
        recordSecret(token);
        const url = `http://${String(started.credentials_endpoint)}/v1/credentials`;
        const common = {
          HOME: home,
          AWS_CONFIG_FILE: path.join(home, 'no-config'),
          AWS_SHARED_CREDENTIALS_FILE: path.join(home, 'no-credentials'),
          AWS_EC2_METADATA_DISABLED: 'true',
          PYTHONDONTWRITEBYTECODE: '1',
          AWS_REGION: 'us-east-1',
          CONSUMER_ENDPOINT: stack.rgw!.stack.endpoint,
          CONSUMER_BUCKET: BUCKET,
          CONSUMER_LOOP_SECONDS: String(LOOP_SECONDS),
        };
        const viaEndpoint = { AWS_CONTAINER_CREDENTIALS_FULL_URI: url };
        const viaTokenFile = { ...viaEndpoint, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile };
        const key = (name: string) => `${stack.prefix}${name}`;
        const file = (name: string) => path.join(stack.outputDir, name);
        const timeout = (LONG_LOOP_SECONDS + 40) * 1000;
        const py = (python: string, script: string, env: Record<string, string>) =>
          runProcess(python, [path.join(here, script)], { ...common, ...env }, timeout);
        const consumers: Record<string, Promise<ConsumerResult>> = {
          'boto3 1.26 (Debian), endpoint + env token': py(SYSTEM_PYTHON, 'sdk_consumer.py', {
            ...viaEndpoint,
            AWS_CONTAINER_AUTHORIZATION_TOKEN: token,
            CONSUMER_KEY: key('debian-boto3'),
          }),
          'boto3 (PyPI), endpoint + token file': py(where.python, 'sdk_consumer.py', {
            ...viaTokenFile,
            CONSUMER_KEY: key('venv-boto3'),
          }),
          'aioboto3, endpoint + token file': py(where.python, 'aioboto3_consumer.py', {
            ...viaTokenFile,
            CONSUMER_MODE: 'endpoint',
            CONSUMER_KEY: key('aioboto3-endpoint'),
          }),
          'aioboto3, four _REF files with the recipe': py(where.python, 'aioboto3_consumer.py', {
            CONSUMER_MODE: 'files',
            CONSUMER_KEY: key('aioboto3-files'),
            ARTIFACTSTORE_S3_ACCESS_KEY_REF: file('access-key'),
            ARTIFACTSTORE_S3_SECRET_KEY_REF: file('secret-key'),
            ARTIFACTSTORE_S3_SESSION_TOKEN_REF: file('session-token'),
            ARTIFACTSTORE_S3_CREDENTIAL_EXPIRATION_REF: file('expiration'),
          }),
          'AWS SDK for JavaScript v3, default chain + token file': runProcess(
            process.execPath,
            [path.join(here, 'js_loop_consumer.ts')],
            {
              ...common,
              ...viaTokenFile,
              CONSUMER_KEY: key('js-v3'),
              CONSUMER_LOOP_SECONDS: String(LONG_LOOP_SECONDS),
              PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin`,
            },
            timeout,
          ),
          'AWS SDK for Go v2, default chain + token file': runProcess(
            where.go,
            [],
            { ...common, ...viaTokenFile, CONSUMER_KEY: key('go-v2') },
            timeout,
          ),
        };

        await new Promise((r) => setTimeout(r, DENY_AFTER_SECONDS * 1000));
        const from = proc.lines.length;
        await stack.writePolicy({ rules: [] });
        proc.child.kill('SIGHUP');
        const revoked = await proc.waitForEvent('lease.revoked', 10_000, from);
        const revokedAt = Date.parse(String(revoked.time));
        const renewals = proc.lines.filter((l): l is LogLine => l.event === 'lease.renewed');
        const held = proc.lines.find(
          (l) =>
            (l.event === 'lease.renewed' || l.event === 'lease.acquired') &&
            l.access_key_id === revoked.access_key_id,
        );
        const heldExpiresAt = Date.parse(String(held?.expiration));
        expect(heldExpiresAt).toBeGreaterThan(revokedAt);
        const failFrom = (name: string) =>
          REVOKED_AT_EXPIRY.has(name) ? heldExpiresAt + 1000 : revokedAt + 1500;

        const results: [string, ConsumerResult, Call[]][] = [];
        const summary: string[] = [];
        for (const [name, promise] of Object.entries(consumers)) {
          const r = await promise;
          const calls = (r.json?.calls ?? []) as Call[];
          results.push([name, r, calls]);
          const before = calls.filter((c) => c.t < revokedAt - 1000);
          const after = calls.filter((c) => c.t > failFrom(name));
          summary.push(
            `${name} (exit ${r.code}): ${before.filter((c) => c.ok).length}/${before.length} ok before the deny with ` +
              `${new Set(before.map((c) => c.key)).size} keys, ${after.filter((c) => !c.ok).length}/${after.length} ` +
              `failed after (${[...new Set(after.map((c) => c.err))].join(',')})`,
          );
        }
        console.info(`[consumers/delivery] ${renewals.length} renewals\n  ${summary.join('\n  ')}`);
        for (const [name, r, calls] of results) {
          expect(r.code, `${name}: ${r.stderr.slice(-2000)}`).toBe(0);
          const before = calls.filter((c) => c.t < revokedAt - 1000);
          const after = calls.filter((c) => c.t > failFrom(name));
          const keys = new Set(before.map((c) => c.key));
          expect(
            before.filter((c) => !c.ok),
            name,
          ).toEqual([]);
          expect(before.length, name).toBeGreaterThanOrEqual(DENY_AFTER_SECONDS - 6);
          // Each renewal the consumer had time to meet: its new key was used by a later call.
          const met = renewals.filter((l) => Date.parse(String(l.time)) < revokedAt - 4000);
          expect(met.length).toBeGreaterThanOrEqual(1);
          for (const l of met) {
            expect(
              calls.some((c) => c.t > Date.parse(String(l.time)) && c.key === l.access_key_id),
              `${name} used the renewed key ${String(l.access_key_id)}`,
            ).toBe(true);
          }
          expect(keys.size, name).toBeGreaterThanOrEqual(2);
          // Revocation: nothing succeeds once the deny has landed.
          expect(after.length, name).toBeGreaterThanOrEqual(2);
          expect(
            after.filter((c) => c.ok),
            name,
          ).toEqual([]);
        }
      } finally {
        proc.kill();
        await proc.exited;
      }
    });
  },
);
