/**
 * S3 clients for the test stacks' S3 servers on loopback (Ceph RGW, SeaweedFS): one configuration, so both
 * stacks are spoken to the same way.
 */
import {
  BucketAlreadyExists,
  BucketAlreadyOwnedByYou,
  CreateBucketCommand,
  S3Client,
} from '@aws-sdk/client-s3';

/** A stack's S3 endpoint and its admin credentials. */
export interface S3StackTarget {
  endpoint: string;
  region: string;
  admin: { accessKeyId: string; secretAccessKey: string };
}

/**
 * An S3 client for the stack (path-style, no flexible checksums RGW 16.2 does not know, one attempt), with
 * the admin credentials unless others are given.
 */
export function stackS3Client(
  stack: S3StackTarget,
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
): S3Client {
  return new S3Client({
    endpoint: stack.endpoint,
    region: stack.region,
    forcePathStyle: true,
    credentials: credentials ?? stack.admin,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
  });
}

/** Creates the bucket as the stack's admin; a bucket that exists already is fine. */
export async function ensureStackBucket(stack: S3StackTarget, bucket: string): Promise<void> {
  const s3 = stackS3Client(stack);
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }), { abortSignal: AbortSignal.timeout(20_000) });
  } catch (e) {
    if (!(e instanceof BucketAlreadyOwnedByYou) && !(e instanceof BucketAlreadyExists)) throw e;
  } finally {
    s3.destroy();
  }
}
