import { describe, expect, it } from 'vitest';
import { backendNotes } from './backend-notes.ts';

const base = { ttlSeconds: 3600, roleArn: undefined } as const;

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
      ...base,
      backend: 'minio',
      roleArn: 'arn:minio:iam:::role/dRnXUKLSuMwJBlgvhILWbmmUgCE',
    });
    expect(n).toEqual({ mode: 'minio-role-policy', warnings: [] });
  });

  it('minio with an AWS-style role ARN: role-policy mode, warned that MinIO refuses it', () => {
    const n = backendNotes({ ...base, backend: 'minio', roleArn: 'arn:aws:iam::123456789012:role/x' });
    expect(n.mode).toBe('minio-role-policy');
    expect(n.warnings).toEqual([expect.stringMatching(/not a MinIO role ARN/)]);
  });

  it('seaweedfs: the token-exp warning; other backends: nothing', () => {
    expect(backendNotes({ ...base, backend: 'seaweedfs', roleArn: 'arn:aws:iam::role/s' }).warnings).toEqual([
      expect.stringMatching(/capped_by_token_exp.*3600s/),
    ]);
    expect(backendNotes({ ...base, backend: 'ceph-rgw', roleArn: 'arn:aws:iam:::role/s' })).toEqual({
      warnings: [],
    });
  });
});
