/**
 * A real JS SDK v3 consumer of the credentials endpoint: an S3Client with no credentials configured, so the
 * default chain's fromHttp uses AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE.
 * PutObject once a second for CONSUMER_LOOP_SECONDS; prints one JSON object (never a secret).
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { consumerS3Client, env } from './js-consumer-client.ts';

const client = consumerS3Client();
const calls: { t: number; key: string | null; ok: boolean; err?: string }[] = [];
const end = Date.now() + Number(env('CONSUMER_LOOP_SECONDS')) * 1000;
for (let i = 0; Date.now() < end; i++) {
  const started = Date.now();
  const call: (typeof calls)[number] = { t: started, key: null, ok: false };
  try {
    // The client signs with this same memoized provider; asking it first shows which key is used.
    call.key = (await client.config.credentials()).accessKeyId;
    await client.send(
      new PutObjectCommand({ Bucket: env('CONSUMER_BUCKET'), Key: `${env('CONSUMER_KEY')}/${i}`, Body: 'x' }),
    );
    call.ok = true;
  } catch (err) {
    call.err = err instanceof Error ? err.name : 'unknown';
  }
  calls.push(call);
  await new Promise((r) => setTimeout(r, Math.max(0, started + 1000 - Date.now())));
}
process.stdout.write(JSON.stringify({ sdk: 'aws-sdk-js-v3', calls }) + '\n');
client.destroy();
