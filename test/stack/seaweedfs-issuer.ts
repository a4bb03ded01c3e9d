/**
 * The SeaweedFS stack's OIDC issuer as a process of its own (started by test/stack/seaweedfs.sh up): the
 * tests' issuer (oidc-issuer.ts: discovery, JWKS with kid, n/e and x5c) on a fixed port, signing with a
 * key kept in ISSUER_KEY_FILE so that tests in other processes can mint tokens SeaweedFS accepts.
 * SeaweedFS reads its providers once, at start: the issuer URL must not change while weed runs.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { startOidcIssuer } from './oidc-issuer.ts';

const port = Number(process.env.ISSUER_PORT);
const keyFile = process.env.ISSUER_KEY_FILE;
if (!Number.isInteger(port) || port <= 0 || !keyFile) {
  throw new Error('seaweedfs-issuer: set ISSUER_PORT and ISSUER_KEY_FILE');
}

let privateJwk: JWK;
if (existsSync(keyFile)) {
  privateJwk = (JSON.parse(readFileSync(keyFile, 'utf8')) as { privateJwk: JWK }).privateJwk;
} else {
  const pair = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  privateJwk = await exportJWK(pair.privateKey);
}
const issuer = await startOidcIssuer({ port, path: '/issuer', privateJwk });
const kid = JSON.parse(
  Buffer.from(
    (await issuer.mint({ sub: 'probe', aud: 'probe' })).split('.')[0] ?? '',
    'base64url',
  ).toString(),
) as { kid: string };
writeFileSync(keyFile, JSON.stringify({ issuer: issuer.url, kid: kid.kid, privateJwk }), { mode: 0o600 });
process.stdout.write(`seaweedfs-issuer: ${issuer.url} (kid ${kid.kid})\n`);

const stop = (): void => {
  void issuer.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
