import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { renderAwsConfig, writeAwsConfig } from './aws-config-file.ts';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('AWS shared config file', () => {
  it('has one profile per lease whose credential_process reads that lease’s credentials.json', () => {
    expect(
      renderAwsConfig([
        { name: 'artifacts', outputDir: '/run/creds/artifacts' },
        { name: 'datasets', outputDir: '/mnt/data sets' },
      ]),
    ).toBe(
      [
        '# Written by sts-sidecar: one profile per lease (AWS_CONFIG_FILE=this file, AWS_PROFILE=<lease>).',
        '',
        '[profile artifacts]',
        'credential_process = cat /run/creds/artifacts/credentials.json',
        '',
        '[profile datasets]',
        "credential_process = cat '/mnt/data sets/credentials.json'",
        '',
      ].join('\n'),
    );
  });

  it('is written atomically with the credential file mode', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'aws-config-'));
    dirs.push(dir);
    const file = path.join(dir, 'aws-config');
    await writeAwsConfig(file, [{ name: 'a', outputDir: '/x/a' }], 0o440);
    expect(await readFile(file, 'utf8')).toContain(
      '[profile a]\ncredential_process = cat /x/a/credentials.json\n',
    );
    expect((await stat(file)).mode & 0o777).toBe(0o440);
  });
});
