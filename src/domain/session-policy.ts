import type { ActionGroup } from '../config/schema.ts';

/** What the credentials may do, after flex-auth narrowed the request. */
export interface Grant {
  readonly bucket: string;
  readonly prefix: string;
  readonly actions: readonly ActionGroup[];
}

const OBJECT_ACTIONS: Record<ActionGroup, readonly string[]> = {
  read: ['s3:GetObject'],
  write: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
  delete: ['s3:DeleteObject'],
  list: [],
};

/**
 * The IAM session policy that narrows a coarse STS role to exactly the grant. Serialised compactly
 * (no white space): botocore-style clients form-encode spaces as `+`, which Ceph RGW 16.2 does not
 * decode, and compact JSON also keeps the packed policy small.
 */
export function buildSessionPolicy(grant: Grant): string {
  const bucketArn = `arn:aws:s3:::${grant.bucket}`;
  const statements: unknown[] = [];
  const objectActions = grant.actions.flatMap((a) => OBJECT_ACTIONS[a]);
  if (objectActions.length > 0) {
    statements.push({ Effect: 'Allow', Action: objectActions, Resource: [`${bucketArn}/${grant.prefix}*`] });
  }
  if (grant.actions.includes('list')) {
    statements.push(
      grant.prefix === ''
        ? { Effect: 'Allow', Action: ['s3:ListBucket'], Resource: [bucketArn] }
        : {
            Effect: 'Allow',
            Action: ['s3:ListBucket'],
            Resource: [bucketArn],
            Condition: { StringLike: { 's3:prefix': [`${grant.prefix}*`] } },
          },
    );
    statements.push({ Effect: 'Allow', Action: ['s3:ListBucketMultipartUploads'], Resource: [bucketArn] });
  }
  return JSON.stringify({ Version: '2012-10-17', Statement: statements });
}

/**
 * A RoleSessionName from the token subject: STS allows [\w+=,.@-]{2,64}. Kubernetes subjects look like
 * `system:serviceaccount:ns:name`, so the colon-separated tail is kept (most specific) when too long.
 */
export function sessionNameFromSubject(sub: string): string {
  let name = sub.replace(/^system:serviceaccount:/, '').replace(/[^\w+=,.@-]/g, '-');
  if (name.length > 64) name = name.slice(name.length - 64);
  if (name.length < 2) name = `sts-sidecar-${name}`;
  return name;
}
