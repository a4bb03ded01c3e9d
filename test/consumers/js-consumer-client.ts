/**
 * What the JS SDK v3 consumers (js_consumer.ts, js_loop_consumer.ts) share: their settings from the
 * environment, and an S3Client with no credentials configured, so the SDK's default chain finds them.
 */
import { S3Client } from '@aws-sdk/client-s3';

/** The value of a CONSUMER_* setting; throws when it is not set. */
export const env = (name: string): string => {
  const v = process.env[name];
  if (v === undefined) throw new Error(`${name} is not set`);
  return v;
};

/** A path-style S3Client for CONSUMER_ENDPOINT without credentials (the default chain supplies them). */
export function consumerS3Client(): S3Client {
  return new S3Client({
    endpoint: env('CONSUMER_ENDPOINT'),
    region: 'us-east-1',
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
  });
}
