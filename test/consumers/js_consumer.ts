/**
 * A real JS SDK v3 consumer: an S3Client with no credentials configured, so the SDK's default chain finds
 * the profile (AWS_CONFIG_FILE, AWS_PROFILE) and its credential_process. Run as its own process (node strips
 * the types); settings come from the environment. Prints one JSON object on stdout.
 */
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

const env = (name: string): string => {
  const v = process.env[name];
  if (v === undefined) throw new Error(`${name} is not set`);
  return v;
};

const client = new S3Client({
  endpoint: env('CONSUMER_ENDPOINT'),
  region: 'us-east-1',
  forcePathStyle: true,
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
  maxAttempts: 1,
});
const bucket = env('CONSUMER_BUCKET');
const key = env('CONSUMER_KEY');
await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'from the JS SDK' }));
const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
const credentials = await client.config.credentials();
process.stdout.write(
  JSON.stringify({
    put: 'ok',
    get: await got.Body?.transformToString(),
    access_key_id: credentials.accessKeyId,
    expiration: credentials.expiration?.toISOString(),
  }) + '\n',
);
client.destroy();
