/**
 * An OIDC issuer outage while the daemon runs, on every real STS. A forced refresh during the outage fails;
 * the set on disk must stay as it is, and the next attempt after the issuer is back must succeed. The
 * policy server allows without looking at the token, so only the STS depends on the issuer.
 *
 * RGW 16.2 fetches the issuer's discovery document and JWKS on every AssumeRoleWithWebIdentity (no cache):
 * any outage fails the refresh. SeaweedFS caches the JWKS for an hour (4.53 ignores the provider's
 * jwksCacheTTLSeconds in the IAM config file) and refetches only on an unknown `kid`: during an outage a
 * token signed with a known key still works (asserted); then the issuer rotates its key while down and the
 * kubelet's next token carries the new kid: SeaweedFS's refetch fails, the refresh fails and the set stays.
 * After resume() the very same token must succeed, which only a fresh JWKS fetch from the same issuer can
 * explain (and shows SeaweedFS does not remember the failed fetch). This file starts its own issuer on the
 * stack's outage port ("outage-issuer" provider), since the shared issuer must stay up for the other files.
 *
 * MinIO keeps the JWKS it loaded and refetches it whenever a token fails to verify: the same two phases
 * as SeaweedFS, but the failed refetch is InvalidParameterValue with the fetch error in the message (which
 * names the issuer's URL), so the minio dialect answers ERR_STS_UNREACHABLE with a short reason. MinIO
 * also never forgets a key: one the issuer removed from its JWKS still verifies until MinIO restarts
 * (asserted after two more rotations). This file starts a MinIO of its own (role-policy mode) *before* its
 * issuer, which shows the other MinIO outage: until MinIO has loaded the provider (about 2 s after the
 * issuer answers; MinIO keeps retrying) a request without RoleArn is 503 STSIAMNotInitialized
 * (ERR_STS_UNREACHABLE) and one with the role ARN is "role does not exist" (ERR_STS_ROLE_UNKNOWN: MinIO
 * says no more, so the sidecar cannot tell it from a wrong ARN; it retries either way).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VARIABLES } from '../../src/config/schema.ts';
import type { LocalStack } from '../stack/local-stack.ts';
import { startOidcIssuer, type OidcIssuer } from '../stack/oidc-issuer.ts';
import { writeProjectedToken } from '../stack/projected-token.ts';
import { readSeaweedfsStack } from '../stack/seaweedfs.ts';
import { minioPortBase, startOwnMinio, type OwnMinio } from '../stack/minio.ts';
import { recordSecret } from '../support/secrets.ts';
import { startSidecar } from '../support/sidecar-process.ts';
import { BACKENDS } from './backends.ts';
import {
  assumeDirect,
  FAST_RETRY_ENV,
  outcome,
  readDiskSet,
  readPolicy,
  startAllowAllPolicy,
  type AllowAllPolicy,
} from './support.ts';

const BUCKET = 'conf-issuer-outage';

/** What the STS answers while it cannot reach the issuer. */
const OUTAGE_FAILURE = {
  'ceph-rgw': { code: 'ERR_STS_ACCESS_DENIED', http_status: 403 },
  seaweedfs: { code: 'ERR_STS_ACCESS_DENIED', http_status: 403 },
  minio: { code: 'ERR_STS_UNREACHABLE', http_status: 400 },
  'minio-claim': { code: 'ERR_STS_UNREACHABLE', http_status: 400 },
} as const;

/** MinIO's own instance: the stack's port base + 5 is its issuer's port, + 6 its S3/STS port. */
const MINIO_OWN_OFFSET = 5;

/** One call through the sidecar's STS adapter (minio dialect): the result or the error. */
const assumeOnMinio = (endpoint: string, token: string, roleArn: string | undefined) =>
  assumeDirect({ endpoint, dialect: 'minio', token, roleArn, policy: readPolicy(BUCKET) });

for (const b of BACKENDS) {
  describe.skipIf(b.skip)(`[${b.name}] issuer outage${b.gate('conformance/issuer-outage')}`, () => {
    let stack: LocalStack;
    let policy: AllowAllPolicy;
    let ownIssuer: OidcIssuer | undefined;
    let ownMinio: OwnMinio | undefined;
    // Backends that keep the JWKS: the outage is felt only by a token with a new key.
    const caches = b.name === 'seaweedfs' || b.name === 'minio';
    const minioIssuerPort = minioPortBase() + MINIO_OWN_OFFSET;
    let started: Promise<void> | undefined;
    /** The issuer (when the test owns one), the local stack and the allow-all policy server. */
    const startStack = () =>
      (started ??= (async () => {
        if (b.name === 'minio' && !ownIssuer) {
          ownIssuer = await startOidcIssuer({ port: minioIssuerPort, path: '/issuer' });
        }
        [stack, policy] = await Promise.all([
          b.start({ bucket: BUCKET, issuer: ownIssuer, minio: ownMinio?.stack }),
          startAllowAllPolicy(),
        ]);
      })());

    beforeAll(async () => {
      b.assertUsable();
      if (b.name === 'minio') {
        // Started while nothing listens on its issuer's port (see the first case).
        ownMinio = await startOwnMinio({
          mode: 'role',
          issuerUrl: `http://127.0.0.1:${minioIssuerPort}/issuer`,
          portOffset: MINIO_OWN_OFFSET,
          waitForSts: false,
        });
        return;
      }
      if (b.name === 'seaweedfs') {
        const sw = await readSeaweedfsStack().catch(() => undefined);
        ownIssuer = await startOidcIssuer({
          port: sw?.outageIssuerPort ?? Number(process.env.SEAWEEDFS_OUTAGE_ISSUER_PORT ?? 18535),
          path: '/issuer',
        });
      }
      await startStack();
    });
    afterAll(async () => {
      await stack?.issuer.resume().catch(() => undefined);
      await Promise.allSettled([stack?.close(), policy?.close(), ownIssuer?.close()]);
      await ownMinio?.stop();
    });

    if (b.name === 'minio') {
      it('MinIO started before its issuer: 503 STSIAMNotInitialized is ERR_STS_UNREACHABLE (with the role ARN: ERR_STS_ROLE_UNKNOWN); it issues once the issuer answers', async () => {
        const own = ownMinio!;
        expect(stack).toBeUndefined();
        const notJwt = 'a.b.c';
        const withoutRole = await assumeOnMinio(own.endpoint, notJwt, undefined);
        expect(withoutRole).toMatchObject({ code: 'ERR_STS_UNREACHABLE', httpStatus: 503 });
        expect(String((withoutRole as Error).message)).toContain('STSIAMNotInitialized');
        const withRole = await assumeOnMinio(own.endpoint, notJwt, own.stack.roleArn);
        expect(withRole).toMatchObject({ code: 'ERR_STS_ROLE_UNKNOWN', httpStatus: 400 });

        const t0 = Date.now();
        await startStack();
        const token = await stack.issuer.mint({ sub: stack.subject, aud: stack.audience });
        let result: unknown;
        do {
          result = await assumeOnMinio(own.endpoint, token, own.stack.roleArn);
          if (!(result instanceof Error)) break;
          await new Promise((r) => setTimeout(r, 250));
        } while (Date.now() - t0 < 30_000);
        expect(result).toMatchObject({ credentials: { accessKeyId: expect.any(String) } });
        console.info(
          `[conformance/issuer-outage] minio: issued ${Date.now() - t0} ms after its issuer started`,
        );
      });
    }

    it(`${caches ? 'an outage is not felt while the JWKS is cached; a token with a new key then fails' : 'a refresh during the outage fails'} with ${OUTAGE_FAILURE[b.name].code} and keeps the set; after it, the lease is renewed`, async () => {
      await startStack();
      // A token signed with the issuer's first key, kept for the end (MinIO never forgets a key).
      const firstKeyToken = await stack.issuer.mint({ sub: stack.subject, aud: stack.audience });
      const proc = startSidecar({ ...stack.env, ...FAST_RETRY_ENV, STS_SIDECAR_FLEX_AUTH_URL: policy.url }, [
        'run',
      ]);
      try {
        const acquired = await proc.waitForEvent('lease.acquired', 15_000);
        const first = await readDiskSet(stack.outputDir);
        expect(first.accessKeyId).toBe(acquired.access_key_id);

        await stack.issuer.pause();
        let before = first;
        let rotatedToken: string | undefined;
        if (caches) {
          // The cached JWKS still verifies the current token: the outage is not felt yet.
          const cachedMark = proc.lines.length;
          proc.child.kill('SIGHUP');
          const cached = await proc.waitForEvent('lease.renewed', 15_000, cachedMark);
          before = await readDiskSet(stack.outputDir);
          expect(before.accessKeyId).toBe(cached.access_key_id);
          // The same issuer rotates its signing key (a kid SeaweedFS has not seen) while it is down, and the
          // kubelet's next token is signed with it.
          await stack.issuer.rotateKey();
          rotatedToken = await stack.issuer.mint({ sub: stack.subject, aud: stack.audience });
          recordSecret(rotatedToken);
          await writeProjectedToken(path.dirname(stack.tokenFile), rotatedToken);
        }
        const generation = await readFile(path.join(stack.outputDir, '..data', 'credentials.json'), 'utf8');
        const mark = proc.lines.length;
        proc.child.kill('SIGHUP');
        const failed = await proc.waitForEvent('lease.failed', 15_000, mark);
        expect(failed).toMatchObject({
          ...OUTAGE_FAILURE[b.name],
          retryable: true,
          set_kept_until: before.expiration,
        });
        // The set has most of its life left, so the retry is drawn over a sixteenth of the time until
        // the readiness margin (src/domain/schedule.ts), not the 1 s backoff: check the announced time,
        // and drive the attempts with SIGHUP as an operator would.
        const failedAt = Date.parse(String(failed.time));
        const untilMargin =
          Date.parse(before.expiration) -
          Number(
            stack.env.STS_SIDECAR_READY_MARGIN_SECONDS ?? VARIABLES.STS_SIDECAR_READY_MARGIN_SECONDS.default,
          ) *
            1000 -
          failedAt;
        const retryIn = Date.parse(String(failed.next_attempt)) - failedAt;
        expect(retryIn).toBeGreaterThan(0);
        expect(retryIn).toBeLessThanOrEqual(Math.max(500, untilMargin / 16) + 1000);
        // A second failed attempt, to show the outage persists and the set still stays.
        proc.child.kill('SIGHUP');
        await proc.waitFor(
          (l) => l.event === 'lease.failed' && proc.lines.indexOf(l) > proc.lines.indexOf(failed),
          10_000,
          'second lease.failed',
        );
        expect(
          proc.lines.slice(mark).some((l) => l.event === 'lease.revoked' || l.event === 'lease.renewed'),
        ).toBe(false);
        expect(await readFile(path.join(stack.outputDir, 'credentials.json'), 'utf8')).toBe(generation);
        const s3 = b.s3(stack, before);
        try {
          expect(
            await outcome(
              s3.send(
                new PutObjectCommand({ Bucket: BUCKET, Key: `${stack.prefix}during-outage.txt`, Body: 'x' }),
              ),
            ),
          ).toBe('ok');
        } finally {
          s3.destroy();
        }

        const servedBeforeResume = stack.issuer.requestCount;
        await stack.issuer.resume();
        // The retry of a long set is spread (see above): SIGHUP retries now.
        proc.child.kill('SIGHUP');
        const renewed = await proc.waitForEvent('lease.renewed', 15_000, mark);
        expect(renewed.access_key_id).not.toBe(before.accessKeyId);
        if (caches) {
          // Renewed with the very token that failed during the outage (the file was not touched since), and
          // SeaweedFS fetched the new key from this issuer after it came back.
          expect(await readFile(stack.tokenFile, 'utf8')).toBe(rotatedToken);
          expect(stack.issuer.requestCount).toBeGreaterThan(servedBeforeResume);
        }
        const after = await readDiskSet(stack.outputDir);
        expect(after.accessKeyId).toBe(renewed.access_key_id);
        const s3b = b.s3(stack, after);
        try {
          expect(
            await outcome(
              s3b.send(
                new PutObjectCommand({ Bucket: BUCKET, Key: `${stack.prefix}after-outage.txt`, Body: 'y' }),
              ),
            ),
          ).toBe('ok');
        } finally {
          s3b.destroy();
        }
        if (b.name === 'minio') {
          // Two more rotations drop the first key from the JWKS; a token with the newest kid makes MinIO
          // refetch it. The first key still verifies: MinIO only ever adds keys.
          await stack.issuer.rotateKey();
          await stack.issuer.rotateKey();
          const servedBefore = stack.issuer.requestCount;
          const newest = await stack.issuer.mint({ sub: stack.subject, aud: stack.audience });
          expect(
            await assumeOnMinio(stack.minio!.endpoint, newest, stack.env.STS_SIDECAR_ROLE_ARN),
          ).toMatchObject({ credentials: { accessKeyId: expect.any(String) } });
          expect(stack.issuer.requestCount).toBeGreaterThan(servedBefore);
          expect(
            await assumeOnMinio(stack.minio!.endpoint, firstKeyToken, stack.env.STS_SIDECAR_ROLE_ARN),
          ).toMatchObject({ credentials: { accessKeyId: expect.any(String) } });
        }
      } finally {
        proc.kill();
        await proc.exited;
      }
    });
  });
}
