// Produces the V8 code cache of the CommonJS bundle (dist/sts-sidecar.code.cjs.cache) that
// scripts/code-cache-loader.cjs starts with. It runs the bundle's `once` in this process, exactly as the
// loader does, against in-process fakes on 127.0.0.1 (a flex-auth that allows, an STS that answers
// AssumeRoleWithWebIdentity with a canned set, a token file, an output directory), then asks V8 for the
// cache: it then holds the compiled code of every function a start-up and an exchange ran. Only this
// build step knows the fakes; the loader has no switch for them.
//
// Run it with the Node binary and V8 flags that will run the loader (the Dockerfile runs it in a stage
// FROM the runtime image): V8 rejects a cache made by another version or with a different flag hash.
//
//   node [--max-semi-space-size=1] scripts/code-cache.mjs <path/to/sts-sidecar.code.cjs>
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import Module from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Script } from 'node:vm';

const file = path.resolve(process.argv[2] ?? 'dist/sts-sidecar.code.cjs');
const dir = mkdtempSync(path.join(os.tmpdir(), 'sts-code-cache-'));

function listen(handler) {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c)).on('end', () => handler(req, res, body));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      server.unref();
      resolve(`http://127.0.0.1:${server.address().port}/`);
    }),
  );
}
const flexAuth = await listen((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', connection: 'close' });
  res.end(JSON.stringify({ decision: 'allow', decision_id: 'code-cache', ttl_seconds: 3600 }));
});
const sts = await listen((_req, res) => {
  const f = (k, v) => `<${k}>${v}</${k}>`;
  res.writeHead(200, { 'content-type': 'text/xml', connection: 'close' });
  res.end(
    '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult>' +
      f('SubjectFromWebIdentityToken', 'code-cache') +
      f(
        'AssumedRoleUser',
        f('Arn', 'arn:aws:sts::000000000000:assumed-role/r/code-cache') +
          f('AssumedRoleId', 'AROA:code-cache'),
      ) +
      f(
        'Credentials',
        f('AccessKeyId', 'AKIACODECACHE') +
          f('SecretAccessKey', 'code-cache-secret') +
          f('SessionToken', 'code-cache-session') +
          f('Expiration', new Date(Date.now() + 3600_000).toISOString()),
      ) +
      '</AssumeRoleWithWebIdentityResult>' +
      f('ResponseMetadata', f('RequestId', 'code-cache')) +
      '</AssumeRoleWithWebIdentityResponse>',
  );
});

// An unsigned JWT: the sidecar reads the claims locally; the fake STS does not verify it.
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const now = Math.floor(Date.now() / 1000);
const tokenFile = path.join(dir, 'token');
writeFileSync(
  tokenFile,
  `${b64({ alg: 'none' })}.${b64({ iss: 'https://code-cache.invalid', sub: 'system:serviceaccount:build:code-cache', aud: ['sts'], iat: now, exp: now + 3600 })}.`,
);
const outputDir = path.join(dir, 'out');
await import('node:fs/promises').then((fs) => fs.mkdir(outputDir));
Object.assign(process.env, {
  STS_SIDECAR_TOKEN_FILE: tokenFile,
  STS_SIDECAR_TOKEN_AUDIENCE: 'sts',
  STS_SIDECAR_TENANT: 'build',
  STS_SIDECAR_BUCKET: 'code-cache',
  STS_SIDECAR_PREFIX: 'warm/',
  STS_SIDECAR_ACTIONS: 'read,write,list',
  STS_SIDECAR_FLEX_AUTH_URL: flexAuth,
  STS_SIDECAR_STS_ENDPOINT: sts,
  STS_SIDECAR_STS_REGION: 'us-east-1',
  STS_SIDECAR_ROLE_ARN: 'arn:aws:iam::000000000000:role/code-cache',
  STS_SIDECAR_BACKEND: 'ceph-rgw',
  STS_SIDECAR_OUTPUT_DIR: outputDir,
  STS_SIDECAR_LOG_LEVEL: process.env.CODE_CACHE_LOG_LEVEL ?? 'silent',
});
process.argv = [process.argv[0], file, 'once'];

const script = new Script(Module.wrap(readFileSync(file, 'utf8')), { filename: file });
process.on('exit', (code) => {
  const wrote = readdirOk(outputDir);
  rmSync(dir, { recursive: true, force: true });
  if (code !== 0 || !wrote) {
    process.stderr.write(`code cache: the warm-up run of once failed (exit ${code}); no cache written\n`);
    process.exitCode = 1;
    return;
  }
  const cache = script.createCachedData();
  writeFileSync(`${file}.cache`, cache);
  process.stdout.write(`built ${file}.cache (${cache.length} bytes, Node ${process.version})\n`);
});
function readdirOk(d) {
  try {
    return readFileSync(path.join(d, 'credentials.json'), 'utf8').includes('AKIACODECACHE');
  } catch {
    return false;
  }
}
const module_ = { exports: {} };
script
  .runInThisContext()
  .call(module_.exports, module_.exports, Module.createRequire(file), module_, file, path.dirname(file));
