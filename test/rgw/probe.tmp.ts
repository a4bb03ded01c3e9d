import { startLocalStack } from '../stack/local-stack.ts';
import { rgwS3Client } from '../stack/ceph-rgw.ts';
import { startOidcIssuer } from '../stack/oidc-issuer.ts';
import { buildSessionPolicy } from '../../src/domain/session-policy.ts';
import { AssumeRoleWithWebIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { PutObjectCommand, GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';

const stack = await startLocalStack({ sts: 'ceph-rgw', roleMaxSessionDuration: 900 });
const rgw = stack.rgw!;
const sts = new STSClient({ endpoint: rgw.stack.endpoint, region: 'us-east-1', maxAttempts: 1 });
const token = await stack.issuer.mint({ sub: 'system:serviceaccount:team-a:app', aud: stack.audience });
const show = (label: string, e: any) => console.log(label, JSON.stringify({ name: e.name, Code: e.Code, code: e.code, message: e.message, status: e.$metadata?.httpStatusCode, reqId: e.$metadata?.requestId, fault: e.$fault }));
const assume = async (o: any) => {
  const t0 = performance.now();
  try {
    const out = await sts.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: rgw.tenant.roleArn, RoleSessionName: 'probe', WebIdentityToken: token, DurationSeconds: 900, ...o }));
    console.log('ok', (performance.now() - t0).toFixed(1), 'ms', out.Credentials?.Expiration, out.$metadata.requestId);
    return out.Credentials!;
  } catch (e) { show(`err ${(performance.now() - t0).toFixed(1)}ms`, e); return undefined; }
};
await assume({});
await assume({ DurationSeconds: 3600 });
await assume({ DurationSeconds: 600 });
await assume({ WebIdentityToken: await stack.issuer.mint({ sub: 'x', aud: 'other' }) });
const other = await startOidcIssuer({ path: '/unknown' });
await assume({ WebIdentityToken: await other.mint({ sub: 'x', aud: stack.audience }) });
await assume({ RoleArn: 'arn:aws:iam:::role/does-not-exist' });
await assume({ WebIdentityToken: await stack.issuer.mint({ sub: 'x', aud: stack.audience }, { ttlSeconds: -10 }) });
await assume({ Policy: '{not json' });
await stack.issuer.pause();
await assume({});
await stack.issuer.resume();
// prefix
for (const actions of [['read', 'write', 'list'], ['read']] as const) {
  const c = await assume({ Policy: buildSessionPolicy({ bucket: stack.bucket, prefix: stack.prefix, actions: [...actions] }) });
  const s3 = rgwS3Client(rgw.stack, { accessKeyId: c!.AccessKeyId!, secretAccessKey: c!.SecretAccessKey!, sessionToken: c!.SessionToken! });
  const tryIt = async (l: string, cmd: any) => { try { await s3.send(cmd); console.log(actions.join(), l, 'OK'); } catch (e: any) { console.log(actions.join(), l, 'ERR', e.name, e.$metadata?.httpStatusCode); } };
  await tryIt('put in', new PutObjectCommand({ Bucket: stack.bucket, Key: 'team-a/x', Body: 'x' }));
  await tryIt('put out', new PutObjectCommand({ Bucket: stack.bucket, Key: 'team-b/x', Body: 'x' }));
  await tryIt('get in', new GetObjectCommand({ Bucket: stack.bucket, Key: 'team-a/x' }));
  await tryIt('list prefix', new ListObjectsV2Command({ Bucket: stack.bucket, Prefix: 'team-a/' }));
  await tryIt('list none', new ListObjectsV2Command({ Bucket: stack.bucket }));
  await tryIt('list other', new ListObjectsV2Command({ Bucket: stack.bucket, Prefix: 'team-b/' }));
  s3.destroy();
}
await other.close();
sts.destroy();
await stack.close();
