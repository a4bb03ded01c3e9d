import { describe, expect, it } from 'vitest';
import { backendNotes } from './backend-notes.ts';

const lease = (roleArn?: string, name?: string) => ({ name, roleArn, ttlSeconds: 3600 });
const base = { leases: [lease()] } as const;

describe('backendNotes', () => {
  it('minio without a role ARN: assumes claim mode and warns that role-policy mode needs the ARN', () => {
    const n = backendNotes({ ...base, backend: 'minio' });
    expect(n.mode).toBe('minio-claim');
    expect(n.warnings).toEqual([
      expect.stringMatching(/ROLE_ARN is not set.*claim mode.*role-policy mode.*refuses/),
    ]);
  });

  it('minio with a MinIO role ARN: role-policy mode, no warning', () => {
    const n = backendNotes({
      backend: 'minio',
      leases: [lease('arn:minio:iam:::role/dRnXUKLSuMwJBlgvhILWbmmUgCE')],
    });
    expect(n).toEqual({ mode: 'minio-role-policy', warnings: [] });
  });

  it('minio with an AWS-style role ARN: role-policy mode, warned that MinIO refuses it', () => {
    const n = backendNotes({ backend: 'minio', leases: [lease('arn:aws:iam::123456789012:role/x')] });
    expect(n.mode).toBe('minio-role-policy');
    expect(n.warnings).toEqual([expect.stringMatching(/not a MinIO role ARN/)]);
  });

  it('seaweedfs: the token-exp warning; other backends: nothing', () => {
    expect(backendNotes({ backend: 'seaweedfs', leases: [lease('arn:aws:iam::role/s')] }).warnings).toEqual([
      expect.stringMatching(/capped_by_token_exp.*3600s/),
    ]);
    expect(backendNotes({ backend: 'ceph-rgw', leases: [lease('arn:aws:iam:::role/s')] })).toEqual({
      warnings: [],
    });
  });

  it('named leases: each lease without a role ARN, or with a foreign one, is named by its key', () => {
    const n = backendNotes({
      backend: 'minio',
      leases: [
        lease('arn:minio:iam:::role/dRnXUKLSuMwJBlgvhILWbmmUgCE', 'writer'),
        lease(undefined, 'reader'),
        lease('arn:aws:iam::123456789012:role/x', 'other'),
      ],
    });
    expect(n.mode).toBe('minio-role-policy');
    expect(n.warnings).toEqual([
      expect.stringMatching(/^leases\[1\] \(reader\)\.roleArn is not set/),
      expect.stringMatching(/^leases\[2\] \(other\)\.roleArn is not a MinIO role ARN/),
    ]);
  });

  it('seaweedfs with named leases: the longest TTL is the one the token must cover', () => {
    const n = backendNotes({
      backend: 'seaweedfs',
      leases: [lease(undefined, 'a'), { name: 'b', roleArn: undefined, ttlSeconds: 7200 }],
    });
    expect(n.warnings).toEqual([expect.stringMatching(/7200s/)]);
  });
});
