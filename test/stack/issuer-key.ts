/**
 * The key of a stack's fixed-port issuer (test/stack/seaweedfs-issuer.ts writes it into the stack's state
 * dir): read it, and mint tokens with it from any test process, as the SeaweedFS and MinIO stacks do.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { importJWK, SignJWT, type JWK } from 'jose';
import { z } from 'zod';

export interface IssuerKey {
  kid: string;
  privateJwk: JWK;
}

const KeyJson = z.object({ kid: z.string(), privateJwk: z.record(z.string(), z.unknown()) });

export async function readIssuerKey(file: string): Promise<IssuerKey> {
  const key = KeyJson.parse(JSON.parse(await readFile(file, 'utf8')));
  return { kid: key.kid, privateJwk: key.privateJwk as JWK };
}

/** An RS256 token from the issuer (kid in the header); `claims` override the defaults. */
export async function mintWithIssuerKey(
  issuerUrl: string,
  key: IssuerKey,
  claims: Record<string, unknown>,
  opts?: { ttlSeconds?: number },
): Promise<string> {
  const privateKey = await importJWK(key.privateJwk, 'RS256');
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    iss: issuerUrl,
    iat: now - 1,
    nbf: now - 1,
    exp: now + (opts?.ttlSeconds ?? 3600),
    jti: randomBytes(12).toString('hex'),
    ...claims,
  })
    .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT' })
    .sign(privateKey);
}
