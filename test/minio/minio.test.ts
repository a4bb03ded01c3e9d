/**
 * MinIO as the STS through testcontainers, on a Docker-API engine: the MinIO server this repository builds
 * from the Go module proxy, as a local image (test/stack/podman.sh: podman's Docker-API service on a unix
 * socket, the image an OCI archive of the Go-built `minio`, loaded without any registry), in claim mode
 * and role-policy mode with the client secret set, against the stack's fixed-port issuer. The container
 * uses host networking: MinIO reaches the issuer on 127.0.0.1 and listens on 127.0.0.1:<port> only (the
 * port's [::1] side held during start, as test/stack/minio.sh does).
 *
 * The same expectations as the conformance suite's MinIO cases, briefly: `once` writes a set that works
 * inside the prefix and is refused outside it; a token for another audience is ERR_STS_INVALID_TOKEN.
 *
 * Runs when DOCKER_HOST (or /var/run/docker.sock) answers /_ping and STSTEST_MINIO_LOCAL_IMAGE names the
 * image, or, without DOCKER_HOST, on the podman service the globalSetup (test/stack/podman-global-setup.ts)
 * starts; STSTEST_REQUIRE_DOCKER=1 makes it mandatory. The
 * probe answers within 2 s and runs before testcontainers is loaded, so it never hangs.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMinio, ensureMinioBucket, minioPortBase, type MinioStack } from '../stack/minio.ts';
import { podmanEnv } from '../stack/podman.ts';
import { stackS3Client } from '../stack/s3-client.ts';
import { startLocalStack, type LocalStack } from '../stack/local-stack.ts';
import { outcome, readDiskSet, startAllowAllPolicy } from '../conformance/support.ts';
import { recordSecret } from '../support/secrets.ts';
import { runSidecarCommand } from '../support/sidecar-process.ts';

// DOCKER_HOST/STSTEST_MINIO_LOCAL_IMAGE as given, else the podman service test/stack/podman.sh runs here.
const podman = process.env.DOCKER_HOST ? undefined : await podmanEnv();
if (podman) process.env.DOCKER_HOST = podman.dockerHost;
const IMAGE = process.env.STSTEST_MINIO_LOCAL_IMAGE ?? podman?.minioImage;
const MINIO_SH = join(dirname(fileURLToPath(import.meta.url)), '..', 'stack', 'minio.sh');

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
  if (!target)
    return 'no Docker engine (no DOCKER_HOST and no /var/run/docker.sock; test/stack/podman.sh up)';
  if (!IMAGE) return 'STSTEST_MINIO_LOCAL_IMAGE is not set (test/stack/podman.sh up prints it)';
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
if (dockerReason && !requireDocker) console.warn(`[minio-testcontainers] skipped: ${dockerReason}`);

/** `minio.sh hold-v6 <port>`: keeps [::1]:<port> bound until killed. */
async function holdV6(port: number): Promise<ChildProcess> {
  const child = spawn('bash', [MINIO_SH, 'hold-v6', String(port)], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`minio.sh hold-v6 exited ${code}`)));
  });
  return child;
}

describe.skipIf(dockerReason !== undefined && !requireDocker)(
  `MinIO STS via testcontainers${dockerReason ? ` (${dockerReason})` : ''}`,
  () => {
    const BUCKET = 'minio-testcontainers';
    let shared: MinioStack;
    const containers: { stop(): Promise<unknown> }[] = [];
    const stacks: LocalStack[] = [];

    /** Starts the image in a container (host network) in one mode on base+offset; returns its endpoint. */
    const startContainer = async (mode: 'role' | 'claim', port: number): Promise<string> => {
      process.env.TESTCONTAINERS_RYUK_DISABLED = 'true'; // Ryuk's image would come from a registry
      const { GenericContainer, Wait } = await import('testcontainers');
      const modeEnv: Record<string, string> =
        mode === 'role'
          ? { MINIO_IDENTITY_OPENID_ROLE_POLICY: shared.rolePolicy }
          : { MINIO_IDENTITY_OPENID_CLAIM_NAME: 'policy' };
      const hold = await holdV6(port);
      try {
        const c = await new GenericContainer(IMAGE!)
          .withNetworkMode('host')
          .withEnvironment({
            MINIO_ROOT_USER: shared.admin.accessKeyId,
            MINIO_ROOT_PASSWORD: shared.admin.secretAccessKey,
            MINIO_UPDATE: 'off',
            MINIO_BROWSER: 'off',
            MINIO_IDENTITY_OPENID_CONFIG_URL: `${shared.issuerUrl}/.well-known/openid-configuration`,
            MINIO_IDENTITY_OPENID_CLIENT_ID: shared.clientId,
            MINIO_IDENTITY_OPENID_CLIENT_SECRET: shared.clientSecret,
            ...modeEnv,
          })
          .withCommand(['server', '/data', '--address', `127.0.0.1:${port}`, '--anonymous'])
          .withWaitStrategy(Wait.forLogMessage(/API: /))
          .withStartupTimeout(60_000)
          .start();
        containers.push(c);
      } finally {
        hold.kill();
      }
      // Host networking: MinIO's sockets are in the host's table; only 127.0.0.1:<port>.
      const sockets = execFileSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean)
        .map((l) => l.trim().split(/\s+/)[3]);
      expect(sockets).toEqual([`127.0.0.1:${port}`]);
      const endpoint = `http://127.0.0.1:${port}`;
      await ensureMinioBucket({ ...shared, roleEndpoint: endpoint, claimEndpoint: endpoint }, mode, BUCKET);
      return endpoint;
    };

    beforeAll(async () => {
      if (dockerReason) throw new Error(`STSTEST_REQUIRE_DOCKER=1 but ${dockerReason}`);
      shared = await ensureMinio();
      recordSecret(shared.admin.secretAccessKey);
      recordSecret(shared.clientSecret);
    }, 180_000);

    afterAll(async () => {
      await Promise.allSettled(stacks.map((s) => s.close()));
      await Promise.allSettled(containers.map((c) => c.stop()));
    });

    it.each([
      ['claim', 8],
      ['role', 9],
    ] as const)(
      '%s mode: once writes a set that works inside the prefix and is refused outside; a foreign audience is ERR_STS_INVALID_TOKEN',
      async (mode, offset) => {
        const endpoint = await startContainer(mode, minioPortBase() + offset);
        const container = { ...shared, roleEndpoint: endpoint, claimEndpoint: endpoint };
        const stack = await startLocalStack({
          sts: mode === 'role' ? 'minio' : 'minio-claim',
          bucket: BUCKET,
          minio: container,
        });
        stacks.push(stack);
        const once = await runSidecarCommand(stack.env, ['once']);
        expect(once.code, once.stderr).toBe(0);
        expect(once.lines.find((l) => l.event === 'lease.acquired')).toMatchObject({ backend: 'minio' });
        const set = await readDiskSet(stack.outputDir);
        // Only the three keys: the set's string `expiration` would be taken for the SDK's Date.
        const s3 = stackS3Client(
          { endpoint, region: shared.region, admin: shared.admin },
          {
            accessKeyId: set.accessKeyId,
            secretAccessKey: set.secretAccessKey,
            sessionToken: set.sessionToken,
          },
        );
        try {
          const put = (key: string) =>
            outcome(s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'x' })));
          expect(await put(`${stack.prefix}hello.txt`)).toBe('ok');
          expect(await put('team-b/hello.txt')).toBe('AccessDenied 403');
        } finally {
          s3.destroy();
        }

        // The STS alone judges the token: a policy server that allows anything, no local audience check.
        await stack.rotateToken({ aud: 'someone-else' });
        const allowAll = await startAllowAllPolicy();
        try {
          const { STS_SIDECAR_TOKEN_AUDIENCE: _aud, ...env } = stack.env;
          const refused = await runSidecarCommand({ ...env, STS_SIDECAR_FLEX_AUTH_URL: allowAll.url }, [
            'once',
          ]);
          expect(refused.code).toBe(3);
          expect(refused.lines.find((l) => l.event === 'lease.failed')).toMatchObject({
            code: 'ERR_STS_INVALID_TOKEN',
            http_status: 400,
          });
        } finally {
          await allowAll.close();
        }
      },
      120_000,
    );
  },
);
