/* global fetch, URLSearchParams */
// The floor of `once` (docs/benchmarks.md, issue 21): the same job with no dependency at all, as short as
// a careful hand-written script gets. Read the projected token, ask flex-auth once, call the STS's
// AssumeRoleWithWebIdentity once with a session policy over plain fetch, pick the four fields out of the
// XML answer, write the five files with fsync into a fresh generation directory and swap `..data` (the
// kubelet layout the sidecar writes). No config validation, no retries, no logging, no error codes: what
// the sidecar does beyond this is its own share of the start-up time.
//
//   node bench/floor-exchange.mjs   (reads the sidecar's own STS_SIDECAR_* variables)
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  symlinkSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

const env = process.env;
const need = (name) => {
  const v = env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const token = readFileSync(need('STS_SIDECAR_TOKEN_FILE'), 'utf8').trim();
const bucket = need('STS_SIDECAR_BUCKET');
const prefix = env.STS_SIDECAR_PREFIX ?? '';
const actions = (env.STS_SIDECAR_ACTIONS ?? 'read').split(',');
const ttl = Number(env.STS_SIDECAR_TTL_SECONDS ?? 3600);
const timeout = () => AbortSignal.timeout(5000);

const decision = await fetch(need('STS_SIDECAR_FLEX_AUTH_URL'), {
  method: 'POST',
  headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
  body: JSON.stringify({
    protected_system: 'object-storage',
    tenant: need('STS_SIDECAR_TENANT'),
    resource: { bucket, prefix },
    actions,
    ttl_seconds: ttl,
  }),
  signal: timeout(),
});
const answer = await decision.json();
if (decision.status !== 200 || answer.decision !== 'allow') throw new Error(`flex-auth: ${decision.status}`);

const arn = `arn:aws:s3:::${bucket}`;
const policy = JSON.stringify({
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject'], Resource: [`${arn}/${prefix}*`] },
    { Effect: 'Allow', Action: ['s3:ListBucket'], Resource: [arn] },
  ],
});
const sts = await fetch(need('STS_SIDECAR_STS_ENDPOINT'), {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({
    Action: 'AssumeRoleWithWebIdentity',
    Version: '2011-06-15',
    RoleArn: need('STS_SIDECAR_ROLE_ARN'),
    RoleSessionName: 'floor',
    WebIdentityToken: token,
    DurationSeconds: String(answer.ttl_seconds ?? ttl),
    Policy: policy,
  }).toString(),
  signal: timeout(),
});
const xml = await sts.text();
if (sts.status !== 200) throw new Error(`STS: HTTP ${sts.status}`);
const field = (name) => {
  const m = new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml);
  if (!m) throw new Error(`STS: no ${name}`);
  return m[1];
};
const set = {
  AccessKeyId: field('AccessKeyId'),
  SecretAccessKey: field('SecretAccessKey'),
  SessionToken: field('SessionToken'),
  Expiration: field('Expiration'),
};

const dir = need('STS_SIDECAR_OUTPUT_DIR');
const generation = `..floor_${Date.now()}.${randomBytes(6).toString('hex')}`;
const genPath = path.join(dir, generation);
mkdirSync(genPath, { mode: 0o755 });
const files = {
  'access-key': set.AccessKeyId,
  'secret-key': set.SecretAccessKey,
  'session-token': set.SessionToken,
  expiration: set.Expiration,
  'credentials.json': JSON.stringify({ Version: 1, ...set }) + '\n',
};
const fsyncDir = (p) => {
  const fd = openSync(p, 'r');
  fsyncSync(fd);
  closeSync(fd);
};
for (const [name, text] of Object.entries(files)) {
  const fd = openSync(path.join(genPath, name), 'wx', 0o644);
  writeSync(fd, text);
  fsyncSync(fd);
  closeSync(fd);
}
fsyncDir(genPath);
symlinkSync(generation, path.join(dir, '..data_tmp'));
renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
for (const name of Object.keys(files)) {
  const tmp = path.join(dir, `..${name}.tmp`);
  symlinkSync(path.join('..data', name), tmp);
  renameSync(tmp, path.join(dir, name));
}
fsyncDir(dir);
