/**
 * Per-call STS latency of the real backends (issue 12): AssumeRoleWithWebIdentity through the sidecar's
 * own STS adapter (the AWS SDK client, the session policy the sidecar sends), against Ceph RGW, SeaweedFS
 * and MinIO (role-policy and claim mode) in the same run, calls interleaved so that machine load hits all
 * alike. Each backend gets a few warm-up calls first (connection set-up, the first JWKS fetch); every
 * figure is the median.
 */
import { readFile } from 'node:fs/promises';
import { STSClient } from '@aws-sdk/client-sts';
import { StsCredentialIssuer } from '../src/adapters/sts.ts';
import { buildSessionPolicy } from '../src/domain/session-policy.ts';
import { rgwUsable } from '../test/stack/ceph-rgw.ts';
import { startLocalStack, type LocalStack } from '../test/stack/local-stack.ts';
import { isSeaweedfsUp, seaweedfsUsable, stopSeaweedfs } from '../test/stack/seaweedfs.ts';
import { isMinioUp, minioUsable, stopMinio } from '../test/stack/minio.ts';

export interface StsLatencyResult {
  /** Backend name -> per-call milliseconds (warm-up excluded). */
  readonly samples: Map<string, number[]>;
  /** Backends that could not run here, with the reason. */
  readonly unavailable: Map<string, string>;
  readonly warmup: number;
}

interface Target {
  name: 'ceph-rgw' | 'seaweedfs' | 'minio' | 'minio-claim';
  stack: LocalStack;
  issuer: StsCredentialIssuer;
  client: STSClient;
  token: string;
}

export async function measureStsLatency(calls: number, warmup = 3): Promise<StsLatencyResult> {
  const unavailable = new Map<string, string>();
  const targets: Target[] = [];
  const seaweedfsWasUp = await isSeaweedfsUp();
  const minioWasUp = await isMinioUp();
  const backends = [
    { name: 'ceph-rgw' as const, usable: rgwUsable() },
    { name: 'seaweedfs' as const, usable: seaweedfsUsable() },
    { name: 'minio' as const, usable: minioUsable() },
    { name: 'minio-claim' as const, usable: minioUsable() },
  ];
  try {
    for (const { name, usable } of backends) {
      if ('reason' in usable) {
        unavailable.set(name, usable.reason);
        continue;
      }
      const stack = await startLocalStack({ sts: name, bucket: 'bench-sts-latency' });
      const client = new STSClient({
        region: stack.env.STS_SIDECAR_STS_REGION ?? 'us-east-1',
        endpoint: stack.env.STS_SIDECAR_STS_ENDPOINT,
        maxAttempts: 1,
      });
      targets.push({
        name,
        stack,
        client,
        issuer: new StsCredentialIssuer({
          client,
          timeoutMs: 10_000,
          dialect: name === 'seaweedfs' ? 'seaweedfs' : name.startsWith('minio') ? 'minio' : 'aws',
        }),
        token: (await readFile(stack.tokenFile, 'utf8')).trim(),
      });
    }
    const samples = new Map<string, number[]>(targets.map((t) => [t.name, []]));
    const policy = buildSessionPolicy({
      bucket: 'bench-sts-latency',
      prefix: 'team-a/',
      actions: ['read', 'write', 'list'],
    });
    for (let i = 0; i < warmup + calls; i++) {
      for (const t of targets) {
        const t0 = performance.now();
        await t.issuer.assume({
          token: t.token,
          roleArn: t.stack.env.STS_SIDECAR_ROLE_ARN,
          sessionName: 'bench',
          durationSeconds: 900,
          policy,
        });
        if (i >= warmup) samples.get(t.name)!.push(performance.now() - t0);
      }
    }
    return { samples, unavailable, warmup };
  } finally {
    for (const t of targets) {
      t.client.destroy();
      await t.stack.close();
    }
    if (!seaweedfsWasUp && !process.env.STSTEST_KEEP_SEAWEEDFS) await stopSeaweedfs().catch(() => undefined);
    if (!minioWasUp && !process.env.STSTEST_KEEP_MINIO) await stopMinio().catch(() => undefined);
  }
}
