/**
 * A long-running boto3 client keeps working across credential rotations: its profile's credential_process
 * is `cat credentials.json`, so botocore's RefreshableCredentials re-reads the file as the set nears expiry
 * (with 60 s leases that is before every call). RGW's minimum session is lowered to 60 s for this file.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack, type LocalStack } from '../stack/local-stack.ts';
import { startSidecar } from '../support/sidecar-process.ts';
import {
  assertRgwUsable,
  lowerRgwMinDuration,
  readDiskSet,
  rgwGate,
  skipRgw,
} from '../conformance/support.ts';
import { MINUTE_LEASES_ENV, awsConfig, boto3Available, runBoto3 } from './support.ts';

const BUCKET = 'consumers-rotation';
const LOOP_SECONDS = 40;
const gate = rgwGate('consumers/rotation');
const boto3 = boto3Available();

describe.skipIf(skipRgw)(`a long-running boto3 client across rotations${gate}`, () => {
  let stack: LocalStack;
  let home: string;
  let restore: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    assertRgwUsable();
    if (!boto3.ok) throw new Error(boto3.reason);
    stack = await startLocalStack({ sts: 'ceph-rgw', bucket: BUCKET });
    restore = await lowerRgwMinDuration(stack.rgw!.stack, 60);
    home = await mkdtemp(path.join(os.tmpdir(), 'consumer-home-'));
  });
  afterAll(async () => {
    await restore?.();
    await stack?.close();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it(
    `PutObject every second for ${LOOP_SECONDS} s across at least two rotations: zero failures`,
    { timeout: 90_000 },
    async () => {
      const proc = startSidecar(
        {
          ...stack.env,
          ...MINUTE_LEASES_ENV,
        },
        ['run'],
      );
      try {
        await proc.waitForEvent('lease.acquired', 15_000);
        await readDiskSet(stack.outputDir);
        const config = path.join(home, 'config');
        await writeFile(
          config,
          awsConfig('sidecar', `cat ${path.join(stack.outputDir, 'credentials.json')}`),
        );
        const r = await runBoto3(
          {
            HOME: home,
            AWS_CONFIG_FILE: config,
            AWS_PROFILE: 'sidecar',
            AWS_SHARED_CREDENTIALS_FILE: path.join(home, 'no-credentials'),
            CONSUMER_MODE: 'profile',
            CONSUMER_ENDPOINT: stack.rgw!.stack.endpoint,
            CONSUMER_BUCKET: BUCKET,
            CONSUMER_KEY: `${stack.prefix}${randomBytes(4).toString('hex')}/tick`,
            CONSUMER_LOOP_SECONDS: String(LOOP_SECONDS),
          },
          (LOOP_SECONDS + 30) * 1000,
        );
        await readDiskSet(stack.outputDir);
        expect(r.code, r.stderr).toBe(0);
        const renewals = proc.lines.filter((l) => l.event === 'lease.renewed');
        const keys = r.json?.access_keys as string[] | undefined;
        console.info(
          `[consumers/rotation] ${String(r.json?.puts)} puts, ${String(r.json?.failures)} failures, ${keys?.length} access keys seen, ${renewals.length} renewals`,
        );
        expect(r.json?.errors).toEqual([]);
        expect(r.json?.failures).toBe(0);
        expect(r.json?.puts).toBeGreaterThanOrEqual(LOOP_SECONDS * 0.75);
        expect(renewals.length).toBeGreaterThanOrEqual(2);
        // The client really followed the rotations: it used at least three different access keys.
        expect(new Set(keys).size).toBeGreaterThanOrEqual(3);
        // Every renewal the client had time to meet was used (the last may land after its final call).
        for (const r2 of renewals.slice(0, -1)) expect(keys).toContain(r2.access_key_id);
        expect(proc.lines.some((l) => l.event === 'lease.failed' || l.event === 'lease.expired')).toBe(false);
      } finally {
        proc.kill();
        await proc.exited;
      }
    },
  );
});
