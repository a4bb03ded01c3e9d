import {
  mkdtemp,
  readFile,
  readdir,
  readlink,
  rm,
  stat,
  symlink,
  writeFile,
  mkdir,
  lstat,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CREDENTIAL_FILES, CredentialDirectory } from './credential-dir.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cred-dir-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const set = (n: number) => ({
  accessKeyId: `AKIA${n}`,
  secretAccessKey: `secret-${n}`,
  sessionToken: `token-${n}`,
  expiresAtMs: Date.UTC(2030, 0, 1, 0, n),
});

async function visible(d: string) {
  return Object.fromEntries(
    await Promise.all(CREDENTIAL_FILES.map(async (f) => [f, await readFile(path.join(d, f), 'utf8')])),
  );
}

describe('CredentialDirectory', () => {
  it('writes the five files kubelet-style: ..data -> generation, names -> ..data/name', async () => {
    const sink = new CredentialDirectory({ dir, fileMode: 0o440 });
    await sink.write(set(1));
    const entries = (await readdir(dir)).sort();
    expect(entries.filter((e) => !e.startsWith('..2'))).toEqual([
      '..data',
      'access-key',
      'credentials.json',
      'expiration',
      'secret-key',
      'session-token',
    ]);
    expect(entries.filter((e) => e.startsWith('..2'))).toHaveLength(1);
    for (const f of CREDENTIAL_FILES) expect(await readlink(path.join(dir, f))).toBe(`..data/${f}`);
    expect(await visible(dir)).toEqual({
      'access-key': 'AKIA1',
      'secret-key': 'secret-1',
      'session-token': 'token-1',
      expiration: '2030-01-01T00:01:00Z',
      'credentials.json':
        JSON.stringify({
          Version: 1,
          AccessKeyId: 'AKIA1',
          SecretAccessKey: 'secret-1',
          SessionToken: 'token-1',
          Expiration: '2030-01-01T00:01:00Z',
        }) + '\n',
    });
  });

  it('applies the mode on every write, whatever the umask', async () => {
    const old = process.umask(0o000);
    try {
      const sink = new CredentialDirectory({ dir, fileMode: 0o440 });
      await sink.write(set(1));
      await sink.write(set(2));
      for (const f of CREDENTIAL_FILES) expect((await stat(path.join(dir, f))).mode & 0o777).toBe(0o440);
      expect((await stat(path.join(dir, '..data'))).mode & 0o777).toBe(0o750);
      const strict = new CredentialDirectory({ dir, fileMode: 0o400 });
      await strict.write(set(3));
      for (const f of CREDENTIAL_FILES) expect((await stat(path.join(dir, f))).mode & 0o777).toBe(0o400);
      expect((await stat(path.join(dir, '..data'))).mode & 0o777).toBe(0o700);
    } finally {
      process.umask(old);
    }
  });

  it('replaces the whole set and removes the old generation', async () => {
    const sink = new CredentialDirectory({ dir, fileMode: 0o440 });
    await sink.write(set(1));
    const first = await readlink(path.join(dir, '..data'));
    await sink.write(set(2));
    const second = await readlink(path.join(dir, '..data'));
    expect(second).not.toBe(first);
    expect((await readdir(dir)).filter((e) => e.startsWith('..2'))).toEqual([second]);
    expect((await visible(dir))['access-key']).toBe('AKIA2');
  });

  it('never writes through a planted symlink', async () => {
    const outside = path.join(dir, '..', `${path.basename(dir)}-victim`);
    await writeFile(outside, 'precious');
    await symlink(outside, path.join(dir, 'secret-key'));
    const sink = new CredentialDirectory({ dir, fileMode: 0o440 });
    await sink.write(set(1));
    expect(await readFile(outside, 'utf8')).toBe('precious');
    expect(await readlink(path.join(dir, 'secret-key'))).toBe('..data/secret-key');
    expect(await readFile(path.join(dir, 'secret-key'), 'utf8')).toBe('secret-1');
    await rm(outside);
  });

  it('refuses a planted ..data directory without touching it', async () => {
    await mkdir(path.join(dir, '..data'));
    const sink = new CredentialDirectory({ dir, fileMode: 0o440 });
    await expect(sink.write(set(1))).rejects.toMatchObject({ code: 'ERR_OUTPUT_DIR' });
    expect((await lstat(path.join(dir, '..data'))).isDirectory()).toBe(true);
    expect((await readdir(dir)).filter((e) => e.startsWith('..2'))).toEqual([]);
  });

  it('remove() takes every visible name away', async () => {
    const sink = new CredentialDirectory({ dir, fileMode: 0o440 });
    await sink.write(set(1));
    await sink.remove();
    expect(await readdir(dir)).toEqual([]);
  });

  it('prepare() cleans leftovers of an interrupted write and reports the set still there', async () => {
    const sink = new CredentialDirectory({ dir, fileMode: 0o440 });
    await sink.write(set(1));
    await mkdir(path.join(dir, '..2031_01_01_00_00_00.abcdef'));
    await symlink('..2031_01_01_00_00_00.abcdef', path.join(dir, '..data_tmp'));
    const found = await sink.prepare();
    expect(found).toEqual({ expiresAtMs: Date.UTC(2030, 0, 1, 0, 1), set: set(1) });
    const left = (await readdir(dir)).sort();
    expect(left.filter((e) => e.startsWith('..2'))).toHaveLength(1);
    expect(left).not.toContain('..data_tmp');
  });

  it('names the directory when it is missing or not a directory', async () => {
    const missing = new CredentialDirectory({ dir: path.join(dir, 'nope'), fileMode: 0o440 });
    await expect(missing.write(set(1))).rejects.toMatchObject({
      code: 'ERR_OUTPUT_DIR',
      message: expect.stringContaining('nope'),
    });
    await writeFile(path.join(dir, 'file'), 'x');
    const file = new CredentialDirectory({ dir: path.join(dir, 'file'), fileMode: 0o440 });
    await expect(file.write(set(1))).rejects.toMatchObject({
      code: 'ERR_OUTPUT_DIR',
      message: expect.stringContaining('not a directory'),
    });
  });
});
