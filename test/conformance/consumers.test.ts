/**
 * Real clients, not our code, read what the sidecar writes and use it against every real STS backend:
 * boto3 through artifact-store's *_REF file variables, boto3 and the JS SDK v3 through an AWS profile's
 * credential_process (`cat credentials.json`, and the sidecar's own `credential-process` command), aioboto3
 * (test/stack/consumers.sh's venv) through the *_REF files with the consistent-read recipe.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../stack/local-stack.ts';
import { runSidecarCommand, sidecarArgv } from '../support/sidecar-process.ts';
import {
  awsConfig,
  boto3Available,
  runBoto3,
  runJsConsumer,
  runProcess,
  SYSTEM_PYTHON,
} from '../consumers/support.ts';
import { BACKENDS } from './backends.ts';
import { readDiskSet } from './support.ts';

const BUCKET = 'conf-consumers';
const boto3 = boto3Available();
const consumersDir = path.join(import.meta.dirname, '..', 'consumers');
const venv = JSON.parse(
  execFileSync('bash', [path.join(import.meta.dirname, '..', 'stack', 'consumers.sh'), 'where'], {
    encoding: 'utf8',
  }),
) as { python: string };

for (const b of BACKENDS) {
  describe.skipIf(b.skip)(
    `[${b.name}] real consumers of the credential set${b.gate('conformance/consumers')}`,
    () => {
      let stack: LocalStack;
      let home: string;
      const run = randomBytes(4).toString('hex');
      const base = () => ({
        HOME: home,
        CONSUMER_ENDPOINT: b.endpoint(stack),
        CONSUMER_BUCKET: BUCKET,
        AWS_SHARED_CREDENTIALS_FILE: path.join(home, 'no-credentials'),
      });

      beforeAll(async () => {
        b.assertUsable();
        if (!boto3.ok) throw new Error(boto3.reason);
        stack = await b.start({ bucket: BUCKET });
        home = await mkdtemp(path.join(os.tmpdir(), 'consumer-home-'));
        const once = await runSidecarCommand(stack.env, ['once']);
        if (once.code !== 0) throw new Error(`sidecar once failed: ${once.stderr}`);
        await readDiskSet(stack.outputDir); // records the secrets for the leak scan
      });
      afterAll(async () => {
        await stack?.close();
        if (home) await rm(home, { recursive: true, force: true });
      });

      it(`boto3 (${SYSTEM_PYTHON}) reads the four files through the ARTIFACTSTORE_S3_*_REF variables`, async () => {
        const r = await runBoto3({
          ...base(),
          CONSUMER_MODE: 'files',
          CONSUMER_KEY: `${stack.prefix}${run}/boto3-files.txt`,
          CONSUMER_FORBIDDEN_KEY: `team-b/${run}/boto3-files.txt`,
          ARTIFACTSTORE_S3_ACCESS_KEY_REF: path.join(stack.outputDir, 'access-key'),
          ARTIFACTSTORE_S3_SECRET_KEY_REF: path.join(stack.outputDir, 'secret-key'),
          ARTIFACTSTORE_S3_SESSION_TOKEN_REF: path.join(stack.outputDir, 'session-token'),
          ARTIFACTSTORE_S3_CREDENTIAL_EXPIRATION_REF: path.join(stack.outputDir, 'expiration'),
        });
        expect(r.code, r.stderr).toBe(0);
        const set = await readDiskSet(stack.outputDir);
        expect(r.json).toMatchObject({
          mode: 'files',
          python: SYSTEM_PYTHON,
          put: 'ok',
          get: 'from boto3',
          access_key_id: set.accessKeyId,
          forbidden_put: 'AccessDenied 403',
        });
        expect(r.json?.expires_in_seconds).toBeGreaterThan(3000);
      });

      it('boto3 with a profile whose credential_process is `cat credentials.json`', async () => {
        const config = path.join(home, 'config-cat');
        await writeFile(
          config,
          awsConfig('sidecar', `cat ${path.join(stack.outputDir, 'credentials.json')}`),
        );
        const r = await runBoto3({
          ...base(),
          CONSUMER_MODE: 'profile',
          AWS_CONFIG_FILE: config,
          AWS_PROFILE: 'sidecar',
          CONSUMER_KEY: `${stack.prefix}${run}/boto3-cat.txt`,
          CONSUMER_FORBIDDEN_KEY: `team-b/${run}/boto3-cat.txt`,
        });
        expect(r.code, r.stderr).toBe(0);
        const set = await readDiskSet(stack.outputDir);
        expect(r.json).toMatchObject({
          put: 'ok',
          get: 'from boto3',
          access_key_id: set.accessKeyId,
          forbidden_put: 'AccessDenied 403',
        });
      });

      it('boto3 with a profile whose credential_process is the sidecar itself (`credential-process`)', async () => {
        const config = path.join(home, 'config-sidecar');
        await writeFile(
          config,
          awsConfig('sidecar', [process.execPath, ...sidecarArgv(['credential-process'])].join(' ')),
        );
        const onDisk = await readDiskSet(stack.outputDir);
        const r = await runBoto3({
          ...base(),
          ...stack.env, // STS_SIDECAR_* reach the credential process through boto3's environment
          CONSUMER_MODE: 'profile',
          AWS_CONFIG_FILE: config,
          AWS_PROFILE: 'sidecar',
          CONSUMER_KEY: `${stack.prefix}${run}/boto3-credential-process.txt`,
        });
        expect(r.code, r.stderr).toBe(0);
        expect(r.json).toMatchObject({ put: 'ok', get: 'from boto3' });
        // A fresh exchange, not the set on disk.
        expect(r.json?.access_key_id).toMatch(/^\S{16,}$/);
        expect(r.json?.access_key_id).not.toBe(onDisk.accessKeyId);
      });

      it('aioboto3 reads the four files through the ARTIFACTSTORE_S3_*_REF variables (consistent-read recipe)', async () => {
        if (!existsSync(venv.python))
          throw new Error(`aioboto3 venv missing (bash test/stack/consumers.sh install): ${venv.python}`);
        const file = (name: string) => path.join(stack.outputDir, name);
        const r = await runProcess(
          venv.python,
          [path.join(consumersDir, 'aioboto3_consumer.py')],
          {
            ...base(),
            CONSUMER_MODE: 'files',
            CONSUMER_LOOP_SECONDS: '2',
            CONSUMER_KEY: `${stack.prefix}${run}/aioboto3`,
            ARTIFACTSTORE_S3_ACCESS_KEY_REF: file('access-key'),
            ARTIFACTSTORE_S3_SECRET_KEY_REF: file('secret-key'),
            ARTIFACTSTORE_S3_SESSION_TOKEN_REF: file('session-token'),
            ARTIFACTSTORE_S3_CREDENTIAL_EXPIRATION_REF: file('expiration'),
          },
          60_000,
        );
        expect(r.code, r.stderr).toBe(0);
        const set = await readDiskSet(stack.outputDir);
        const calls = (r.json?.calls ?? []) as { ok: boolean; key: string }[];
        expect(calls.length).toBeGreaterThan(0);
        expect(calls).toEqual(calls.map(() => ({ t: expect.any(Number), ok: true, key: set.accessKeyId })));
      });

      it('the JS SDK v3 default chain with AWS_CONFIG_FILE/AWS_PROFILE and `cat credentials.json`', async () => {
        const config = path.join(home, 'config-js');
        await writeFile(
          config,
          awsConfig('sidecar', `cat ${path.join(stack.outputDir, 'credentials.json')}`),
        );
        const r = await runJsConsumer({
          ...base(),
          AWS_CONFIG_FILE: config,
          AWS_PROFILE: 'sidecar',
          CONSUMER_KEY: `${stack.prefix}${run}/js-sdk.txt`,
        });
        expect(r.code, r.stderr).toBe(0);
        const set = await readDiskSet(stack.outputDir);
        expect(r.json).toMatchObject({
          put: 'ok',
          get: 'from the JS SDK',
          access_key_id: set.accessKeyId,
          expiration: set.json.Expiration.replace('Z', '.000Z'),
        });
      });
    },
  );
}
