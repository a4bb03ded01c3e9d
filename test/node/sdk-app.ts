/**
 * The Node app of the real-pod tests (test/node/js-sdk-pod.test.ts): a JS SDK v3 consumer, run as its own
 * UID in the image `test/stack/app-images.sh node` builds (bundled with @aws-sdk/client-s3 by esbuild).
 *
 * It passes no credentials: the SDK's default credential chain finds them as it would in any pod (the
 * chart's AWS_CONFIG_FILE profile with `credential_process`, or its credentials endpoint). Every
 * APP_PERIOD seconds it makes two puts on the real S3 endpoint (APP_S3_ENDPOINT, image ENV; APP_S3_REGION
 * when no profile names the region): one inside the granted prefix, one outside it. Each outcome is one
 * JSON line on stdout (the pod's log): `start`, then `s3` with `inside`/`outside` ("ok" or the error's
 * name), the last error's message, the access key the SDK used (its first 4 characters, never the
 * secret) and its expiration; on SIGTERM it prints `sigterm` and exits 0.
 */
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

function emit(event: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(JSON.stringify({ event, time: Date.now() / 1000, ...fields }) + '\n');
}

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

let lastError: string | undefined;

async function put(s3: S3Client, key: string): Promise<string> {
  try {
    await s3.send(
      new PutObjectCommand({ Bucket: env('APP_BUCKET'), Key: key, Body: 'from a real pod (JS SDK)' }),
      { abortSignal: AbortSignal.timeout(10_000) },
    );
    return 'ok';
  } catch (err) {
    lastError = (err as Error).message;
    return (err as { name?: string }).name ?? 'Error';
  }
}

async function main(): Promise<void> {
  let stopping = false;
  process.once('SIGTERM', () => {
    stopping = true;
    emit('sigterm');
    process.exit(0);
  });
  emit('start', {
    uid: process.getuid?.(),
    gid: process.getgid?.(),
    groups: process.getgroups?.(),
    awsConfigFile: process.env.AWS_CONFIG_FILE ?? null,
    profile: process.env.AWS_PROFILE ?? null,
  });
  // What an app on RGW writes: its endpoint and path-style addressing; credentials from the default chain.
  // The region comes from the chart's profile when there is one, else from the app's own setting.
  const s3 = new S3Client({
    endpoint: env('APP_S3_ENDPOINT'),
    ...(process.env.AWS_CONFIG_FILE ? {} : { region: env('APP_S3_REGION') }),
    forcePathStyle: true,
    maxAttempts: 1,
  });
  const period = Number(process.env.APP_PERIOD ?? '2') * 1000;
  for (let n = 0; !stopping; n++) {
    const prefix = env('APP_PREFIX');
    const inside = await put(s3, `${prefix}js-sdk-${n}.txt`);
    const outside = await put(s3, `elsewhere/js-sdk-${n}.txt`);
    let keyId: string | undefined;
    let expiration: string | undefined;
    try {
      const creds = await s3.config.credentials();
      keyId = creds.accessKeyId.slice(0, 4);
      expiration = creds.expiration?.toISOString();
    } catch (err) {
      keyId = undefined;
      emit('credentials', { ok: false, error: (err as Error).name, message: (err as Error).message });
    }
    emit('s3', { n, ok: inside === 'ok', inside, outside, keyId, expiration, lastError });
    await new Promise((r) => setTimeout(r, period));
  }
}

main().catch((err: unknown) => {
  emit('fatal', { error: (err as Error).name, message: (err as Error).message });
  process.exit(1);
});
