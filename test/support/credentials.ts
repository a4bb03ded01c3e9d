import { readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { recordSecret } from './secrets.ts';

export interface OnDiskSet {
  generation: string;
  accessKey: string;
  secretKey: string;
  sessionToken: string;
  expiration: string;
  json: {
    Version: number;
    AccessKeyId: string;
    SecretAccessKey: string;
    SessionToken: string;
    Expiration: string;
  };
}

/** Reads the set the way the README tells apps to (resolve ..data once), recording its secrets. */
export async function readSet(dir: string): Promise<OnDiskSet> {
  const generation = await readlink(path.join(dir, '..data'));
  const read = (name: string) => readFile(path.join(dir, generation, name), 'utf8');
  const set = {
    generation,
    accessKey: await read('access-key'),
    secretKey: await read('secret-key'),
    sessionToken: await read('session-token'),
    expiration: await read('expiration'),
    json: JSON.parse(await read('credentials.json')) as OnDiskSet['json'],
  };
  recordSecret(set.secretKey);
  recordSecret(set.sessionToken);
  return set;
}

export async function httpGet(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
}
