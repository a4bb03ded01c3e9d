/**
 * MinIO as the STS, through testcontainers: MinIO's OpenID provider pointed at the local issuer (claim-based
 * policy mode: the token's `policy` claim names a MinIO policy; no RoleArn is sent), and the sidecar's `once`
 * with STS_SIDECAR_BACKEND=minio writes a set that works for PutObject.
 *
 * Needs a Docker engine. Without one (this project's build machine has the docker CLI but no daemon) the
 * file skips with a one-line reason; the probe answers within 2 s and runs before testcontainers is loaded,
 * so it never hangs. The container reaches the host through host.testcontainers.internal
 * (TestContainers.exposeHostPorts). The local issuer's discovery names 127.0.0.1 URLs, which the container
 * cannot reach, so a small proxy here serves discovery with the host alias and forwards the JWKS.
 * Untested here: everything inside this describe (see docs/backends.md).
 */
import { existsSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack, type LocalStack } from '../stack/local-stack.ts';
import { readDiskSet } from '../conformance/support.ts';
import { runSidecarCommand } from '../support/sidecar-process.ts';

const MINIO_IMAGE = process.env.STSTEST_MINIO_IMAGE ?? 'minio/minio:RELEASE.2024-12-18T13-15-44Z';
const HOST_ALIAS = 'host.testcontainers.internal';

/** Where the Docker engine should be, from DOCKER_HOST or the default socket; undefined when none. */
function dockerEndpoint(): { socketPath: string } | { host: string; port: number } | undefined {
  const dh = process.env.DOCKER_HOST;
  if (dh?.startsWith('unix://')) return { socketPath: dh.slice('unix://'.length) };
  if (dh?.startsWith('tcp://')) {
    const u = new URL(dh.replace(/^tcp:/, 'http:'));
    return { host: u.hostname, port: Number(u.port || 2375) };
  }
  if (dh) return undefined; // ssh:// and friends: not probed here
  return existsSync('/var/run/docker.sock') ? { socketPath: '/var/run/docker.sock' } : undefined;
}

/** GET /_ping with a 2 s deadline: resolves to undefined when an engine answers, else the reason. */
async function dockerUnavailable(): Promise<string | undefined> {
  const target = dockerEndpoint();
  if (!target) return 'no Docker engine (no DOCKER_HOST and no /var/run/docker.sock)';
  return new Promise((resolve) => {
    const req = request({ ...target, path: '/_ping', method: 'GET', timeout: 2000 }, (res) => {
      res.resume();
      resolve(
        res.statusCode === 200 ? undefined : `Docker engine answered /_ping with HTTP ${res.statusCode}`,
      );
    });
    req.on('timeout', () => {
      req.destroy();
      resolve('Docker engine did not answer /_ping within 2 s');
    });
    req.on('error', (err: NodeJS.ErrnoException) =>
      resolve(`Docker engine unreachable (${err.code ?? err.message})`),
    );
    req.end();
  });
}

const dockerReason = await dockerUnavailable();
const requireDocker = process.env.STSTEST_REQUIRE_DOCKER === '1';
if (dockerReason && !requireDocker) console.warn(`[minio] skipped: ${dockerReason}`);

/** Serves the issuer's discovery with host-alias URLs and forwards everything else to the issuer. */
async function startDiscoveryProxy(issuerUrl: string): Promise<{ server: Server; port: number }> {
  const issuer = new URL(issuerUrl);
  let port = 0;
  const server = createServer((req, res) => {
    const upstream = request(
      {
        host: issuer.hostname,
        port: issuer.port,
        path: req.url,
        method: req.method,
        headers: { connection: 'close' },
      },
      (up) => {
        const chunks: Buffer[] = [];
        up.on('data', (c: Buffer) => chunks.push(c));
        up.on('end', () => {
          let body = Buffer.concat(chunks).toString('utf8');
          if (req.url?.endsWith('/.well-known/openid-configuration')) {
            body = body.split(`${issuer.protocol}//${issuer.host}`).join(`http://${HOST_ALIAS}:${port}`);
          }
          res.writeHead(up.statusCode ?? 502, { 'content-type': 'application/json', connection: 'close' });
          res.end(body);
        });
      },
    );
    upstream.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    upstream.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  port = (server.address() as AddressInfo).port;
  return { server, port };
}

describe.skipIf(dockerReason !== undefined && !requireDocker)(
  `MinIO STS via testcontainers${dockerReason ? ` (${dockerReason})` : ''}`,
  () => {
    let stack: LocalStack;
    let proxy: { server: Server; port: number };
    let minio:
      | { stop(): Promise<unknown>; getConnectionUrl(): string; getUsername(): string; getPassword(): string }
      | undefined;
    const BUCKET = 'minio-sidecar';

    beforeAll(async () => {
      if (dockerReason) throw new Error(`STSTEST_REQUIRE_DOCKER=1 but ${dockerReason}`);
      stack = await startLocalStack({ sts: 'stand-in', bucket: BUCKET });
      proxy = await startDiscoveryProxy(stack.issuer.url);
      const { TestContainers } = await import('testcontainers');
      const { MinioContainer } = await import('@testcontainers/minio');
      await TestContainers.exposeHostPorts(proxy.port);
      const issuerPath = new URL(stack.issuer.url).pathname;
      minio = await new MinioContainer(MINIO_IMAGE)
        .withEnvironment({
          MINIO_IDENTITY_OPENID_CONFIG_URL: `http://${HOST_ALIAS}:${proxy.port}${issuerPath}/.well-known/openid-configuration`,
          MINIO_IDENTITY_OPENID_CLIENT_ID: stack.audience,
          MINIO_IDENTITY_OPENID_CLAIM_NAME: 'policy',
          MINIO_IDENTITY_OPENID_SCOPES: 'openid',
        })
        .start();
      const admin = new S3Client({
        endpoint: minio.getConnectionUrl(),
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: minio.getUsername(), secretAccessKey: minio.getPassword() },
      });
      try {
        await admin.send(new CreateBucketCommand({ Bucket: BUCKET }));
      } finally {
        admin.destroy();
      }
      // Claim-based mode: the token names the MinIO policy to apply.
      await stack.rotateToken({ policy: 'readwrite' });
    }, 180_000);

    afterAll(async () => {
      await minio?.stop();
      if (proxy) await new Promise<void>((resolve) => proxy.server.close(() => resolve()));
      await stack?.close();
    });

    it('once with STS_SIDECAR_BACKEND=minio and no RoleArn writes a set that works for PutObject', async () => {
      const { STS_SIDECAR_ROLE_ARN: _arn, ...env } = stack.env;
      const once = await runSidecarCommand(
        { ...env, STS_SIDECAR_BACKEND: 'minio', STS_SIDECAR_STS_ENDPOINT: minio!.getConnectionUrl() },
        ['once'],
      );
      expect(once.code, once.stderr).toBe(0);
      expect(once.lines.find((l) => l.event === 'lease.acquired')).toMatchObject({ backend: 'minio' });
      const set = await readDiskSet(stack.outputDir);
      const s3 = new S3Client({
        endpoint: minio!.getConnectionUrl(),
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: {
          accessKeyId: set.accessKeyId,
          secretAccessKey: set.secretAccessKey,
          sessionToken: set.sessionToken,
        },
      });
      try {
        const key = `${stack.prefix}hello.txt`;
        await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'hello minio' }));
        const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
        expect(await got.Body?.transformToString()).toBe('hello minio');
      } finally {
        s3.destroy();
      }
    });
  },
);
