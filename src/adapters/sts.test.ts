/** The STS adapter with the real SDK against the STS stand-in: what the SDK really hands us, mapped. */
import { STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOidcIssuer, type OidcIssuer } from '../../test/stack/oidc-issuer.ts';
import { startStsStandIn, type StsStandIn } from '../../test/stack/sts-stand-in.ts';
import { recordSecret } from '../../test/support/secrets.ts';
import { StsCredentialIssuer } from './sts.ts';

let issuer: OidcIssuer;
let sts: StsStandIn;
let token: string;

beforeAll(async () => {
  issuer = await startOidcIssuer();
  sts = await startStsStandIn({ issuerUrl: issuer.url, audience: 'sts' });
  token = await issuer.mint({ sub: 'system:serviceaccount:ns:sa', aud: 'sts' });
  recordSecret(token);
});
afterAll(async () => {
  await sts.close();
  await issuer.close();
});

const adapter = (timeoutMs = 2000) =>
  new StsCredentialIssuer({
    client: new STSClient({ region: 'us-east-1', endpoint: sts.endpoint, maxAttempts: 1 }),
    timeoutMs,
  });
const request = () => ({
  token,
  roleArn: 'arn:aws:iam::1:role/r',
  sessionName: 'ns-sa',
  durationSeconds: 900,
  policy: '{}',
});

describe('StsCredentialIssuer', () => {
  it('returns the credentials, expiry and request id', async () => {
    sts.setFault(undefined);
    const r = await adapter().assume(request());
    expect(r.credentials.accessKeyId).toMatch(/^ASIA/);
    expect(r.credentials.expiresAtMs - Date.now()).toBeGreaterThan(890_000);
    expect(r.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(sts.calls.at(-1)).toMatchObject({
      roleArn: 'arn:aws:iam::1:role/r',
      sessionName: 'ns-sa',
      durationSeconds: 900,
      policy: '{}',
    });
  });

  it('omits RoleArn when none is configured (MinIO claim mode)', async () => {
    sts.setFault(undefined);
    await adapter().assume({ ...request(), roleArn: undefined });
    expect(sts.calls.at(-1)!.roleArn).toBeUndefined();
  });

  it.each([
    [{ kind: 'error', status: 400, code: 'InvalidIdentityToken' }, 'ERR_STS_INVALID_TOKEN'],
    [{ kind: 'error', status: 400, code: 'ExpiredTokenException' }, 'ERR_STS_EXPIRED_TOKEN'],
    [{ kind: 'error', status: 403, code: 'AccessDenied' }, 'ERR_STS_ACCESS_DENIED'],
    [{ kind: 'error', status: 400, code: 'MalformedPolicyDocument' }, 'ERR_STS_MALFORMED_POLICY'],
    [{ kind: 'error', status: 400, code: 'PackedPolicyTooLarge' }, 'ERR_STS_MALFORMED_POLICY'],
    [
      {
        kind: 'error',
        status: 400,
        code: 'ValidationError',
        message: 'DurationSeconds exceeds the MaxSessionDuration',
      },
      'ERR_STS_DURATION_OUT_OF_RANGE',
    ],
    [{ kind: 'error', status: 400, code: 'IDPCommunicationError' }, 'ERR_STS_UNREACHABLE'],
    // RGW answers S3-style <Error><Code>…: the SDK cannot read it as a Query error, the adapter still can.
    [{ kind: 'error', status: 403, code: 'AccessDenied', s3Style: true }, 'ERR_STS_ACCESS_DENIED'],
    [{ kind: 'error', status: 400, code: 'InvalidIdentityToken', s3Style: true }, 'ERR_STS_INVALID_TOKEN'],
    [{ kind: 'status', status: 500 }, 'ERR_STS_UNREACHABLE'],
    [{ kind: 'status', status: 403 }, 'ERR_STS_ACCESS_DENIED'],
    [{ kind: 'malformed' }, 'ERR_STS_INVALID_RESPONSE'],
    [{ kind: 'missing', field: 'SessionToken' }, 'ERR_STS_INVALID_RESPONSE'],
    [{ kind: 'missing', field: 'Expiration' }, 'ERR_STS_INVALID_RESPONSE'],
    [{ kind: 'reset' }, 'ERR_STS_UNREACHABLE'],
    [{ kind: 'huge' }, 'ERR_STS_INVALID_RESPONSE'],
    [{ kind: 'delay', ms: 3000 }, 'ERR_STS_UNREACHABLE'],
  ] as const)('%o -> %s', async (fault, code) => {
    sts.setFault(fault);
    const err = await adapter(1000)
      .assume(request())
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code });
    expect(String((err as Error).message)).not.toContain(token);
  });

  it.each([
    ['seaweedfs', { message: 'invalid token: signature' }, 'ERR_STS_INVALID_TOKEN'],
    [
      'seaweedfs',
      { message: 'DurationSeconds must be between 900 and 3600 seconds' },
      'ERR_STS_DURATION_OUT_OF_RANGE',
    ],
    ['aws', { message: 'invalid token: signature' }, 'ERR_STS_REJECTED'],
    // MinIO's real messages (test/conformance/sts-errors.test.ts sees them from a real MinIO).
    ['minio', { message: 'crypto/rsa: verification error' }, 'ERR_STS_INVALID_TOKEN'],
    ['minio', { message: 'No public key found for kid abc' }, 'ERR_STS_INVALID_TOKEN'],
    [
      'minio',
      { message: 'STS JWT Token has `azp` claim invalid, `azp` must match configured OpenID Client ID' },
      'ERR_STS_INVALID_TOKEN',
    ],
    ['minio', { message: 'Token is expired' }, 'ERR_STS_EXPIRED_TOKEN'],
    ['minio', { message: 'Token used before issued' }, 'ERR_STS_INVALID_TOKEN'],
    ['minio', { message: 'invalid token expiry' }, 'ERR_STS_DURATION_OUT_OF_RANGE'],
    [
      'minio',
      {
        message: 'Error processing RoleArn parameter: Role arn:minio:iam:::role/x does not exist',
      },
      'ERR_STS_ROLE_UNKNOWN',
    ],
    ['minio', { message: "Version cannot be empty expecting '2012-10-17'" }, 'ERR_STS_MALFORMED_POLICY'],
    [
      'minio',
      {
        message:
          'Get "http://10.1.2.3:8080/realms/x/jwks": dial tcp 10.1.2.3:8080: connect: connection refused',
      },
      'ERR_STS_UNREACHABLE',
    ],
    ['minio', { message: 'something MinIO never said before' }, 'ERR_STS_REJECTED'],
  ] as const)('the %s dialect maps InvalidParameterValue %o to %s', async (dialect, extra, code) => {
    sts.setFault({ kind: 'error', status: 400, code: 'InvalidParameterValue', ...extra });
    const a = new StsCredentialIssuer({
      client: new STSClient({ region: 'us-east-1', endpoint: sts.endpoint, maxAttempts: 1 }),
      timeoutMs: 1000,
      dialect,
    });
    const err = await a.assume(request()).catch((e: unknown) => e);
    expect(err).toMatchObject({ code, httpStatus: 400 });
    expect(String((err as Error).message)).not.toContain(token);
    // A code and a short reason: never the STS's own text (MinIO's can name the issuer's internal URL).
    expect(String((err as Error).message)).not.toContain(extra.message);
  });

  it.each([
    ['ERR_STS_ROLE_UNKNOWN', 'Role arn:minio:iam:::role/x does not exist', false],
    ['ERR_STS_MALFORMED_POLICY', 'Session policy should not exceed 2048 characters', false],
    ['ERR_STS_INVALID_TOKEN', 'crypto/rsa: verification error', true],
  ] as const)('minio: %s is retryable=%s', async (code, message, retryable) => {
    sts.setFault({ kind: 'error', status: 400, code: 'InvalidParameterValue', message });
    const a = new StsCredentialIssuer({
      client: new STSClient({ region: 'us-east-1', endpoint: sts.endpoint, maxAttempts: 1 }),
      timeoutMs: 1000,
      dialect: 'minio',
    });
    await expect(a.assume(request())).rejects.toMatchObject({ code, retryable });
  });

  it.each(['STSNotInitialized', 'STSIAMNotInitialized'])(
    'minio: %s (503, MinIO started before its issuer) is an outage, ERR_STS_UNREACHABLE',
    async (stsCode) => {
      sts.setFault({ kind: 'error', status: 503, code: stsCode });
      const a = new StsCredentialIssuer({
        client: new STSClient({ region: 'us-east-1', endpoint: sts.endpoint, maxAttempts: 1 }),
        timeoutMs: 1000,
        dialect: 'minio',
      });
      const err = await a.assume(request()).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_STS_UNREACHABLE', httpStatus: 503, retryable: true });
      expect(String((err as Error).message)).toContain(stsCode);
    },
  );

  it('an unreachable endpoint is ERR_STS_UNREACHABLE', async () => {
    const a = new StsCredentialIssuer({
      client: new STSClient({ region: 'us-east-1', endpoint: 'http://127.0.0.1:9', maxAttempts: 1 }),
      timeoutMs: 1000,
    });
    await expect(a.assume(request())).rejects.toMatchObject({ code: 'ERR_STS_UNREACHABLE' });
  });
});
