/**
 * A real JS SDK v3 consumer: an S3Client with no credentials configured, so the SDK's default chain finds
 * the profile (AWS_CONFIG_FILE, AWS_PROFILE) and its credential_process. Run as its own process (node strips
 * the types); settings come from the environment. Prints one JSON object on stdout.
 */
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { consumerS3Client, env } from './js-consumer-client.ts';

const client = consumerS3Client();
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
