import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SignJWT, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDenial } from '../lease-outcome.ts';
import { checkToken, FileTokenSource, watchTokenDirectory } from './token-file.ts';
import { writeProjectedToken } from '../../test/stack/projected-token.ts';

let dir: string;
let key: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
const now = () => Date.now();

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'token-'));
  ({ privateKey: key } = await generateKeyPair('RS256'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function jwt(claims: Record<string, unknown>, exp = '1h') {
  return new SignJWT({ sub: 'system:serviceaccount:ns:sa', aud: ['sts'], iss: 'https://issuer', ...claims })
    .setProtectedHeader({ alg: 'RS256' })
    .setIssuedAt()
    .setExpirationTime(exp)
    .sign(key);
}

async function source(content: string | undefined, audience: string | null = 'sts') {
  const file = path.join(dir, `t-${Math.random().toString(36).slice(2)}`);
  if (content !== undefined) await writeFile(file, content);
  return new FileTokenSource({ path: file, audience: audience ?? undefined, now });
}

describe('FileTokenSource', () => {
  it('reads and decodes a valid token', async () => {
    const t = await (await source(await jwt({ tenant: 'team-a' }))).read();
    expect(t).toMatchObject({
      subject: 'system:serviceaccount:ns:sa',
      issuer: 'https://issuer',
      audience: ['sts'],
      tenant: 'team-a',
    });
  });

  it.each([
    ['missing', undefined, 'ERR_TOKEN_MISSING'],
    ['empty', '  \n', 'ERR_TOKEN_EMPTY'],
    ['not a JWT', 'hello', 'ERR_TOKEN_MALFORMED'],
    ['huge', 'x'.repeat(70_000), 'ERR_TOKEN_TOO_LARGE'],
  ] as const)('%s -> %$', async (_name, content, code) => {
    await expect((await source(content)).read()).rejects.toMatchObject({ code });
  });

  it('rejects an expired token, a not-yet-valid one and a wrong audience', async () => {
    await expect((await source(await jwt({}, '-1s'))).read()).rejects.toMatchObject({
      code: 'ERR_TOKEN_EXPIRED',
    });
    await expect(
      (await source(await jwt({ nbf: Math.floor(Date.now() / 1000) + 600 }))).read(),
    ).rejects.toMatchObject({
      code: 'ERR_TOKEN_NOT_YET_VALID',
    });
    await expect((await source(await jwt({ aud: 'other' }))).read()).rejects.toMatchObject({
      code: 'ERR_TOKEN_AUDIENCE',
      message: expect.stringContaining('STS_SIDECAR_TOKEN_AUDIENCE'),
    });
  });

  it('tenant: a string is kept, an absent claim is undefined (the loop decides)', async () => {
    expect((await (await source(await jwt({ tenant: 'team-a' }))).read()).tenant).toBe('team-a');
    expect((await (await source(await jwt({}))).read()).tenant).toBeUndefined();
  });

  it.each([
    ['an array', ['team-a'], 'array'],
    ['null', null, 'null'],
    ['a number', 7, 'number'],
    ['an object', { name: 'team-a' }, 'object'],
    ['a boolean', true, 'boolean'],
  ])(
    'tenant claim that is %s never passes: ERR_TOKEN_TENANT_MISSING, a deny, naming the source',
    async (_name, tenant, kind) => {
      const src = await source(await jwt({ tenant }));
      const err = await src.read().catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_TOKEN_TENANT_MISSING', retryable: false });
      expect(isDenial(err)).toBe(true);
      const message = (err as Error).message;
      expect(message).toMatch(/^token file .* has a tenant claim that is not a string/);
      expect(message).toContain(`(${kind})`);
      expect(message).not.toContain('team-a');
    },
  );

  it('checkToken names the source it is given, not a "token file"', async () => {
    const raw = await jwt({ tenant: ['team-a'] });
    expect(() => checkToken(raw, 'the access token in the IdP answer', undefined, Date.now())).toThrow(
      /^the access token in the IdP answer has a tenant claim that is not a string/,
    );
    expect(() => checkToken('opaque', 'the access token in the IdP answer', undefined, Date.now())).toThrow(
      /^the access token in the IdP answer is not a JWT/,
    );
  });

  it('skips the audience check when no audience is configured', async () => {
    await expect((await source(await jwt({ aud: 'other' }), null)).read()).resolves.toBeDefined();
  });

  it('refuses a directory in place of the file', async () => {
    const d = path.join(dir, 'as-dir');
    await mkdir(d);
    await expect(new FileTokenSource({ path: d, audience: undefined, now }).read()).rejects.toMatchObject({
      code: 'ERR_TOKEN_UNREADABLE',
    });
  });

  it('never puts the token into an error message', async () => {
    const token = await jwt({ aud: 'other' });
    const err = await (await source(token)).read().catch((e: Error) => e);
    expect(String((err as Error).message)).not.toContain(token.split('.')[2]);
  });

  it('re-reads on every call and notices a kubelet-style rotation', async () => {
    const tdir = path.join(dir, 'projected');
    await mkdir(tdir);
    await writeProjectedToken(tdir, await jwt({ gen: 1 }));
    const src = new FileTokenSource({ path: path.join(tdir, 'token'), audience: 'sts', now });
    const first = await src.read();
    let changes = 0;
    const watcher = await watchTokenDirectory(path.join(tdir, 'token'), () => changes++);
    try {
      await new Promise((r) => setTimeout(r, 1100));
      await writeProjectedToken(tdir, await jwt({ gen: 2 }));
      await expect.poll(() => changes, { timeout: 5000 }).toBeGreaterThan(0);
      const second = await src.read();
      expect(second.raw).not.toBe(first.raw);
    } finally {
      await watcher.close();
    }
  });
});
