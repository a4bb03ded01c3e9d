/**
 * The demo on the expanded identity path (`STS_DEMO_IDENTITY=keycloak bash scripts/demo.sh`): the pod's
 * projected service-account token (from the stand-in SA issuer: no kube-apiserver runs here) is traded
 * at a real Keycloak for an IAM Profile token, which flex-auth verifies against Keycloak's JWKS and the
 * real Ceph RGW accepts; then a service account Keycloak does not know is refused and the set removed.
 */
import { readdir } from 'node:fs/promises';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { decodeJwt } from 'jose';
import { readSet } from '../support/credentials.ts';
import { startSidecar, type LogLine } from '../support/sidecar-process.ts';
import { isRgwUp, rgwS3Client, stopRgw } from './ceph-rgw.ts';
import { downKeycloak, isKeycloakUp } from './keycloak.ts';
import { startKeycloakStack } from './keycloak-stack.ts';

const t0 = Date.now();
const say = (msg: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${msg}`);
const mask = (s: string) => `${s.slice(0, 4)}…(${s.length} chars)`;
const show = (l: LogLine) => {
  const { level: _l, time: _t, service: _s, version: _v, msg: _m, ...rest } = l;
  say(`sidecar log: ${JSON.stringify(rest)}`);
};

const [rgwWasUp, kcWasUp] = await Promise.all([isRgwUp(), isKeycloakUp()]);
say(kcWasUp ? 'Keycloak already running' : 'starting Keycloak (first start builds it: up to a minute) ...');
const SA = 'system:serviceaccount:team-a:artifact-store';
const stack = await startKeycloakStack({
  clients: [{ serviceAccount: SA, clientId: 'artifact-store', tenant: 'team-a', audience: 'sts.local' }],
  audience: 'sts.local',
});
say(
  `Keycloak realm ${stack.realm.issuer} trusts the SA issuer ${stack.saIssuer.url} (stand-in for the cluster's)`,
);
say(
  `flex-auth ${stack.decision.url} verifies tokens against ${stack.realm.jwksUrl}; STS: Ceph RGW ${stack.rgw.stack.endpoint}`,
);
const sidecar = startSidecar({ ...stack.env }, ['run'], { label: 'demo-keycloak' });
try {
  const saToken = await stack.rotateToken(SA);
  const sa = decodeJwt(saToken);
  say(`projected token: iss=${sa.iss} sub=${sa.sub} aud=${String(sa.aud)} (no tenant claim)`);
  show(await sidecar.waitForEvent('sidecar.started'));
  show(await sidecar.waitForEvent('lease.acquired', 30_000));
  const set = await readSet(stack.outputDir);
  say(
    `files: ${(await readdir(stack.outputDir)).join('  ')}; access-key=${set.accessKey} secret-key=${mask(set.secretKey)}`,
  );
  const s3 = rgwS3Client(stack.rgw.stack, {
    accessKeyId: set.accessKey,
    secretAccessKey: set.secretKey,
    sessionToken: set.sessionToken,
  });
  await s3.send(new PutObjectCommand({ Bucket: stack.bucket, Key: `${stack.prefix}hello.txt`, Body: 'hi' }));
  say(`S3 PutObject ${stack.prefix}hello.txt: ok`);
  const outside = await s3
    .send(new PutObjectCommand({ Bucket: stack.bucket, Key: 'team-b/nope.txt', Body: 'x' }))
    .then(
      () => 'ALLOWED (unexpected)',
      (e: Error) => `refused (${e.name})`,
    );
  say(`S3 PutObject team-b/nope.txt: ${outside}`);
  s3.destroy();

  say('the pod now runs as a service account Keycloak has no client for; SIGHUP ...');
  await stack.rotateToken('system:serviceaccount:team-a:stranger');
  const from = sidecar.lines.length;
  sidecar.child.kill('SIGHUP');
  show(await sidecar.waitForEvent('lease.denied', 15_000, from));
  say(`files: ${(await readdir(stack.outputDir)).join('  ') || '(none: fail closed)'}`);
  sidecar.kill('SIGTERM');
  const { code } = await sidecar.exited;
  say(`sidecar exited with ${code}; demo done`);
} finally {
  sidecar.kill('SIGKILL');
  await stack.close();
  if (!kcWasUp && !process.env.STSTEST_KEEP_KEYCLOAK) await downKeycloak();
  if (!rgwWasUp && !process.env.STSTEST_KEEP_RGW) await stopRgw();
}
