/**
 * The demo: the built sidecar on the local stack, vending and rotating credentials in front of you in
 * under a minute. Uses the real Ceph RGW STS when it is usable here (root with Debian's Ceph packages),
 * otherwise the STS stand-in. Run it with `npm run demo` (or `bash scripts/demo.sh` on a fresh machine).
 */
import { readdir } from 'node:fs/promises';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { readSet } from '../support/credentials.ts';
import { startSidecar, type LogLine } from '../support/sidecar-process.ts';
import { isRgwUp, rgwS3Client, setRgwConfig, stopRgw } from './ceph-rgw.ts';
import { startLocalStack } from './local-stack.ts';

const t0 = Date.now();
const say = (msg: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${msg}`);
const mask = (s: string) => `${s.slice(0, 4)}…(${s.length} chars)`;

// Leave the machine as found: stop the Ceph stack at the end only if the demo started it.
const rgwWasUp = await isRgwUp();
const stack = await startLocalStack({ sts: 'auto', leaseSeconds: 30, minDurationSeconds: 30 }).catch(
  (err: Error) => {
    // The real STS could not come up (ports taken by another stack, a broken install): show the flow on
    // the stand-in rather than nothing, and say why.
    say(
      `Ceph RGW unavailable, using the STS stand-in instead: ${err.message.split('\n').filter(Boolean).join(' | ')}`,
    );
    return startLocalStack({ sts: 'stand-in', leaseSeconds: 30, minDurationSeconds: 30 });
  },
);
say(
  `local stack up: issuer ${stack.issuer.url}, flex-auth ${stack.decision.url}, STS ${stack.stsKind === 'ceph-rgw' ? `Ceph RGW ${stack.rgw!.stack.endpoint} (real)` : `stand-in ${stack.standIn!.endpoint}`}`,
);
if (stack.rgw) await setRgwConfig(stack.rgw.stack, 'rgw_sts_min_session_duration', '30');

const sidecar = startSidecar(
  {
    ...stack.env,
    STS_SIDECAR_TTL_SECONDS: '60',
    STS_SIDECAR_STS_MIN_DURATION_SECONDS: '30',
    STS_SIDECAR_READY_MARGIN_SECONDS: '10',
    STS_SIDECAR_REFRESH_FRACTION: '0.3',
    STS_SIDECAR_REFRESH_JITTER: '0.05',
  },
  ['run'],
  { label: 'demo' },
);
const show = (l: LogLine) => {
  const { level: _l, time: _t, service: _s, version: _v, msg: _m, ...rest } = l;
  say(`sidecar log: ${JSON.stringify(rest)}`);
};

try {
  const started = await sidecar.waitForEvent('sidecar.started');
  show(started);
  const acquired = await sidecar.waitForEvent('lease.acquired', 20_000);
  show(acquired);
  let set = await readSet(stack.outputDir);
  say(`files in ${stack.outputDir}: ${(await readdir(stack.outputDir)).join('  ')}`);
  say(
    `access-key=${set.accessKey} secret-key=${mask(set.secretKey)} session-token=${mask(set.sessionToken)} expiration=${set.expiration}`,
  );
  const health = await fetch(`http://${String(started.listen)}/readyz`);
  say(`GET /readyz -> ${health.status} ${(await health.text()).trim()}`);

  if (stack.rgw) {
    const s3 = rgwS3Client(stack.rgw.stack, {
      accessKeyId: set.accessKey,
      secretAccessKey: set.secretKey,
      sessionToken: set.sessionToken,
    });
    await s3.send(
      new PutObjectCommand({
        Bucket: stack.bucket,
        Key: `${stack.prefix}hello.txt`,
        Body: 'written with vended credentials',
      }),
    );
    const got = await s3.send(
      new GetObjectCommand({ Bucket: stack.bucket, Key: `${stack.prefix}hello.txt` }),
    );
    say(
      `S3 PutObject+GetObject ${stack.prefix}hello.txt with those credentials: "${await got.Body!.transformToString()}"`,
    );
    const denied = await s3
      .send(new PutObjectCommand({ Bucket: stack.bucket, Key: 'team-b/nope.txt', Body: 'x' }))
      .then(
        () => 'ALLOWED (unexpected)',
        (e: Error) => `refused (${e.name})`,
      );
    say(`S3 PutObject team-b/nope.txt (outside the granted prefix): ${denied}`);
  }

  say('kubelet rotates the projected token ...');
  await stack.rotateToken();
  show(await sidecar.waitForEvent('token.rotated', 10_000));

  say('waiting for the scheduled renewal (30% of the lease, minus jitter) ...');
  const renewed = await sidecar.waitForEvent('lease.renewed', 40_000);
  show(renewed);
  set = await readSet(stack.outputDir);
  say(
    `new set on disk: access-key=${set.accessKey} expiration=${set.expiration} (generation ${set.generation})`,
  );

  say('policy change: flex-auth no longer allows team-a; operator sends SIGHUP ...');
  await stack.writePolicy({ rules: [] });
  const from = sidecar.lines.length;
  sidecar.child.kill('SIGHUP');
  show(await sidecar.waitForEvent('lease.revoked', 10_000, from));
  show(await sidecar.waitForEvent('lease.denied', 10_000, from));
  say(`files in ${stack.outputDir}: ${(await readdir(stack.outputDir)).join('  ') || '(none: fail closed)'}`);

  sidecar.kill('SIGTERM');
  const { code } = await sidecar.exited;
  show(sidecar.lines.at(-1)!);
  say(`sidecar exited with ${code}; demo done`);
} finally {
  sidecar.kill('SIGKILL');
  if (stack.rgw)
    await setRgwConfig(stack.rgw.stack, 'rgw_sts_min_session_duration', '900').catch(() => undefined);
  await stack.close();
  if (stack.rgw && !rgwWasUp && !process.env.STSTEST_KEEP_RGW) await stopRgw();
}
