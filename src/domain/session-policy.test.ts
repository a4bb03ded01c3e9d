import { describe, expect, it } from 'vitest';
import { buildSessionPolicy, sessionNameFromSubject } from './session-policy.ts';

describe('buildSessionPolicy', () => {
  it('maps each action group to exactly its S3 actions, scoped to the prefix', () => {
    const policy = JSON.parse(
      buildSessionPolicy({ bucket: 'b1', prefix: 'team-a/', actions: ['delete', 'list', 'read', 'write'] }),
    );
    expect(policy).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Action: [
            's3:DeleteObject',
            's3:GetObject',
            's3:PutObject',
            's3:AbortMultipartUpload',
            's3:ListMultipartUploadParts',
          ],
          Resource: ['arn:aws:s3:::b1/team-a/*'],
        },
        {
          Effect: 'Allow',
          Action: ['s3:ListBucket'],
          Resource: ['arn:aws:s3:::b1'],
          Condition: { StringLike: { 's3:prefix': ['team-a/*'] } },
        },
        { Effect: 'Allow', Action: ['s3:ListBucketMultipartUploads'], Resource: ['arn:aws:s3:::b1'] },
      ],
    });
  });

  it('read only grants GetObject and nothing on the bucket', () => {
    const policy = JSON.parse(buildSessionPolicy({ bucket: 'b1', prefix: 'p/', actions: ['read'] }));
    expect(policy.Statement).toEqual([
      { Effect: 'Allow', Action: ['s3:GetObject'], Resource: ['arn:aws:s3:::b1/p/*'] },
    ]);
  });

  it('an empty prefix means the whole bucket, without a prefix condition', () => {
    const policy = JSON.parse(buildSessionPolicy({ bucket: 'b1', prefix: '', actions: ['list'] }));
    expect(policy.Statement[0]).toEqual({
      Effect: 'Allow',
      Action: ['s3:ListBucket'],
      Resource: ['arn:aws:s3:::b1'],
    });
  });

  it('is compact JSON: no white space for RGW and botocore', () => {
    expect(
      buildSessionPolicy({ bucket: 'b1', prefix: 'a/', actions: ['read', 'write', 'list'] }),
    ).not.toMatch(/\s/);
  });
});

describe('sessionNameFromSubject', () => {
  it('drops the service-account prefix and replaces colons', () => {
    expect(sessionNameFromSubject('system:serviceaccount:team-a:artifact-store')).toBe(
      'team-a-artifact-store',
    );
  });

  it('always satisfies [\\w+=,.@-]{2,64}', () => {
    for (const sub of ['x', '', 'a b/c:d', 'é'.repeat(100), `system:serviceaccount:${'n'.repeat(80)}:sa`]) {
      expect(sessionNameFromSubject(sub)).toMatch(/^[\w+=,.@-]{2,64}$/);
    }
  });

  it('keeps the most specific tail of a long subject', () => {
    expect(sessionNameFromSubject(`system:serviceaccount:${'n'.repeat(80)}:my-sa`).endsWith('-my-sa')).toBe(
      true,
    );
  });
});
