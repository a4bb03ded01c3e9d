/**
 * What RGW's STS refusals become in the sidecar's `lease.failed` line. RGW 16.2 answers S3-style
 * (`<Error><Code>AccessDenied</Code><Message/>`) with HTTP 403 for every token or role problem (wrong
 * audience, unregistered issuer, unknown role, issuer unreachable) and gives no reason: ERR_STS_ACCESS_DENIED
 * with http_status 403 is the truthful mapping (RGW never says InvalidIdentityToken).
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack, type LocalStack } from '../stack/local-stack.ts';
import { startOidcIssuer, type OidcIssuer } from '../stack/oidc-issuer.ts';
import { writeProjectedToken } from '../stack/projected-token.ts';
import { recordSecret } from '../support/secrets.ts';
import { startSidecar } from '../support/sidecar-process.ts';
import {
  assertRgwUsable,
  FAST_RETRY_ENV,
  rgwGate,
  skipRgw,
  startAllowAllPolicy,
  type AllowAllPolicy,
} from './support.ts';

const BUCKET = 'rgw-sts-errors';
const gate = rgwGate('rgw/sts-errors');

describe.skipIf(skipRgw)(`RGW STS refusals map to useful codes${gate}`, () => {
  let stack: LocalStack;
  let policy: AllowAllPolicy;
  let stranger: OidcIssuer;

  beforeAll(async () => {
    assertRgwUsable();
    [stack, policy, stranger] = await Promise.all([
      startLocalStack({ sts: 'ceph-rgw', bucket: BUCKET }),
      startAllowAllPolicy(),
      startOidcIssuer({ path: '/not-registered' }),
    ]);
  });
  afterAll(async () => {
    await Promise.allSettled([stack?.close(), policy?.close(), stranger?.close()]);
  });

  /** Writes `token` as the projected token, runs the daemon until its first lease.failed, returns it. */
  const firstFailure = async (token: string, extraEnv: Record<string, string> = {}) => {
    recordSecret(token);
    await writeProjectedToken(path.dirname(stack.tokenFile), token);
    // No local audience check and a policy server that allows anything: RGW alone judges the token.
    const { STS_SIDECAR_TOKEN_AUDIENCE: _aud, ...env } = stack.env;
    const proc = startSidecar(
      { ...env, ...FAST_RETRY_ENV, STS_SIDECAR_FLEX_AUTH_URL: policy.url, ...extraEnv },
      ['run'],
    );
    try {
      const failed = await proc.waitForEvent('lease.failed', 15_000);
      expect(proc.lines.some((l) => l.event === 'lease.acquired')).toBe(false);
      expect(await readdir(stack.outputDir)).not.toContain('access-key');
      return failed;
    } finally {
      proc.kill();
      await proc.exited;
    }
  };

  const subject = 'system:serviceaccount:team-a:artifact-store';

  it('a token for another audience: ERR_STS_ACCESS_DENIED, HTTP 403, RGW request id', async () => {
    const failed = await firstFailure(await stack.issuer.mint({ sub: subject, aud: 'someone-else' }));
    expect(failed).toMatchObject({ code: 'ERR_STS_ACCESS_DENIED', http_status: 403, retryable: true });
    expect(String(failed.message)).toContain('AccessDenied');
    expect(String(failed.sts_request_id)).toMatch(/^tx/);
  });

  it('a token from an issuer RGW does not know: ERR_STS_ACCESS_DENIED, HTTP 403', async () => {
    const failed = await firstFailure(await stranger.mint({ sub: subject, aud: stack.audience }));
    expect(failed).toMatchObject({ code: 'ERR_STS_ACCESS_DENIED', http_status: 403, issuer: stranger.url });
    expect(String(failed.message)).toContain('AccessDenied');
  });

  it('a RoleArn of a role that does not exist: ERR_STS_ACCESS_DENIED, HTTP 403', async () => {
    const failed = await firstFailure(await stack.issuer.mint({ sub: subject, aud: stack.audience }), {
      STS_SIDECAR_ROLE_ARN: 'arn:aws:iam:::role/does-not-exist',
    });
    expect(failed).toMatchObject({ code: 'ERR_STS_ACCESS_DENIED', http_status: 403 });
    expect(String(failed.message)).toContain('AccessDenied');
  });
});
