/**
 * The SeaweedFS stack's OIDC issuer as a process of its own (started by test/stack/seaweedfs.sh up): the
 * tests' issuer (oidc-issuer.ts: discovery, JWKS with kid, n/e and x5c) on a fixed port, signing with a
 * key kept in ISSUER_KEY_FILE so that tests in other processes can mint tokens SeaweedFS accepts.
 * SeaweedFS reads its providers once, at start: the issuer URL must not change while weed runs.
 */
import { createPrivateKey, createPublicKey, type JsonWebKey } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { startOidcIssuer } from './oidc-issuer.ts';

const port = Number(process.env.ISSUER_PORT);
const keyFile = process.env.ISSUER_KEY_FILE;
if (!Number.isInteger(port) || port <= 0 || !keyFile) {
  throw new Error('seaweedfs-issuer: set ISSUER_PORT and ISSUER_KEY_FILE');
}

const issuerUrl = `http://127.0.0.1:${port}/issuer`;
const privateKeyObject = (jwk: JWK) => createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' });

let privateJwk: JWK;
if (existsSync(keyFile)) {
  privateJwk = (JSON.parse(readFileSync(keyFile, 'utf8')) as { privateJwk: JWK }).privateJwk;
} else {
  const pair = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  privateJwk = await exportJWK(pair.privateKey);
}
// The key file is written before the port is opened: `seaweedfs.sh up` waits for the port, and a reader
// that sees the port must also find the key (kid = the JWK thumbprint, as startOidcIssuer uses).
const kid = await calculateJwkThumbprint(await exportJWK(createPublicKey(privateKeyObject(privateJwk))));
writeFileSync(`${keyFile}.tmp`, JSON.stringify({ issuer: issuerUrl, kid, privateJwk }), { mode: 0o600 });
renameSync(`${keyFile}.tmp`, keyFile);
const issuer = await startOidcIssuer({ port, path: '/issuer', privateJwk });
if (issuer.url !== issuerUrl)
  throw new Error(`seaweedfs-issuer: listening as ${issuer.url}, expected ${issuerUrl}`);
process.stdout.write(`seaweedfs-issuer: ${issuer.url} (kid ${kid})\n`);

const stop = (): void => {
  void issuer.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
