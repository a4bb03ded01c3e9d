/**
 * On every real STS: the credential set the built sidecar writes works, and only inside the grant. The
 * session policy narrows the coarse role (s3:* on the bucket) to the prefix and the granted actions.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../stack/local-stack.ts';
import { runSidecarCommand } from '../support/sidecar-process.ts';
import { BACKENDS_WITH_MINIO_CLAIM_MODE, sidecarBackend } from './backends.ts';
import { outcome, readDiskSet } from './support.ts';

const BUCKET = 'conf-session-policy';
const PREFIX = 'team-a/';

// MinIO twice: the role-policy mode and the claim mode attach the coarse policy differently.
for (const b of BACKENDS_WITH_MINIO_CLAIM_MODE) {
  describe.skipIf(b.skip)(
    `[${b.name}] session policy narrows the role${b.gate('conformance/session-policy')}`,
    () => {
      let stack: LocalStack;
      let otherDir: string;
      const run = randomBytes(4).toString('hex');
      const foreignKey = `team-b/${run}/theirs.txt`;

      beforeAll(async () => {
        b.assertUsable();
        stack = await b.start({ bucket: BUCKET, prefix: PREFIX });
        await stack.writePolicy({
          rules: ['team-a/', 'team-b/'].map((prefix) => ({
            tenant: stack.tenant,
            subject: '*',
            bucket: BUCKET,
            prefix,
            actions: ['read', 'write', 'list'],
            max_ttl_seconds: 3600,
          })),
        });
        // An object outside team-a/ owned by the same web-identity user, written through a team-b/ set: only
        // the session policy can keep the team-a/ set away from it.
        otherDir = await mkdtemp(path.join(os.tmpdir(), 'rgw-team-b-'));
        const other = await runSidecarCommand(
          { ...stack.env, STS_SIDECAR_PREFIX: 'team-b/', STS_SIDECAR_OUTPUT_DIR: otherDir },
          ['once'],
        );
        if (other.code !== 0) throw new Error(`team-b once failed: ${other.stderr}`);
        const s3 = b.s3(stack, await readDiskSet(otherDir));
        try {
          await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: foreignKey, Body: 'theirs' }));
        } finally {
          s3.destroy();
        }
      });
      afterAll(async () => {
        await stack?.close();
        if (otherDir) await rm(otherDir, { recursive: true, force: true });
      });

      it('read,write,list grant: object calls and listing work inside the prefix and are refused outside it', async () => {
        const once = await runSidecarCommand(stack.env, ['once']);
        expect(once.code, once.stderr).toBe(0);
        const acquired = once.lines.find((l) => l.event === 'lease.acquired');
        expect(acquired).toMatchObject({
          backend: sidecarBackend(b.name),
          actions: ['list', 'read', 'write'],
        });

        const set = await readDiskSet(stack.outputDir);
        expect(set.json).toMatchObject({
          Version: 1,
          AccessKeyId: set.accessKeyId,
          Expiration: set.expiration,
        });
        const s3 = b.s3(stack, set);
        try {
          const key = `${PREFIX}${run}/hello.txt`;
          expect(
            await outcome(s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'hello' }))),
          ).toBe('ok');
          const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
          expect(await got.Body?.transformToString()).toBe('hello');
          const listed = await s3.send(
            new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${PREFIX}${run}/` }),
          );
          expect(listed.Contents?.map((c) => c.Key)).toEqual([key]);

          // Outside the prefix: the role alone would allow all of these.
          expect(
            await outcome(
              s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `team-b/${run}.txt`, Body: 'x' })),
            ),
          ).toBe('AccessDenied 403');
          expect(await outcome(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: foreignKey })))).toBe(
            'AccessDenied 403',
          );
          // The s3:prefix condition on ListBucket is enforced: no prefix, or another one, is refused.
          expect(await outcome(s3.send(new ListObjectsV2Command({ Bucket: BUCKET })))).toBe(
            'AccessDenied 403',
          );
          expect(
            await outcome(s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'team-b/' }))),
          ).toBe('AccessDenied 403');
        } finally {
          s3.destroy();
        }
      });

      it('read-only grant from flex-auth: GetObject works, PutObject, a multipart upload and listing are refused by the STS backend', async () => {
        // Seed an object with a read-write set first (objects belong to the web-identity shadow user).
        const key = `${PREFIX}${run}/seed.txt`;
        expect((await runSidecarCommand(stack.env, ['once'])).code).toBe(0);
        const rw = b.s3(stack, await readDiskSet(stack.outputDir));
        try {
          await rw.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'seed' }));
        } finally {
          rw.destroy();
        }

        // The sidecar still asks read,write,list; the policy grants only read.
        await stack.writePolicy({
          rules: [
            {
              tenant: stack.tenant,
              subject: '*',
              bucket: BUCKET,
              prefix: PREFIX,
              actions: ['read'],
              max_ttl_seconds: 3600,
            },
          ],
        });
        const once = await runSidecarCommand(stack.env, ['once']);
        expect(once.code, once.stderr).toBe(0);
        expect(once.lines.find((l) => l.event === 'lease.acquired')).toMatchObject({ actions: ['read'] });
        const ro = b.s3(stack, await readDiskSet(stack.outputDir));
        try {
          const got = await ro.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
          expect(await got.Body?.transformToString()).toBe('seed');
          expect(
            await outcome(
              ro.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}${run}/w.txt`, Body: 'x' })),
            ),
          ).toBe('AccessDenied 403');
          expect(
            await outcome(
              ro.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: `${PREFIX}${run}/multi.bin` })),
            ),
          ).toBe('AccessDenied 403');
          expect(await outcome(ro.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: PREFIX })))).toBe(
            'AccessDenied 403',
          );
        } finally {
          ro.destroy();
        }
      });
    },
  );
}
