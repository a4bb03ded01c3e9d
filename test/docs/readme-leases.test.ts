/** The README's named-leases example (issue 19) is a configuration the sidecar accepts, as written. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import { REPO_ROOT } from '../support/sidecar-process.ts';

const readme = readFileSync(`${REPO_ROOT}/README.md`, 'utf8');
const section = readme.slice(readme.indexOf('### Several leases'));
const example = /```json\n([\s\S]*?)```/.exec(section)?.[1];

describe('README: several leases', () => {
  it('the example config file loads with the shared settings from the environment', () => {
    expect(example).toBeDefined();
    const config = loadConfig(
      {
        STS_SIDECAR_CONFIG_FILE: '/etc/sts-sidecar/config.json',
        STS_SIDECAR_FLEX_AUTH_URL: 'https://flex-auth.example/v1/decisions',
        STS_SIDECAR_ROLE_ARN: 'arn:aws:iam:::role/artifact-store',
      },
      () => example!,
    );
    expect(config.tenant).toBe('team-a');
    expect(config.leases.map((l) => [l.name, l.outputDir, l.roleArn])).toEqual([
      ['artifacts', '/var/run/sts-sidecar/credentials/artifacts', 'arn:aws:iam:::role/artifact-store'],
      ['datasets', '/var/run/sts-sidecar/credentials/datasets', 'arn:aws:iam:::role/dataset-reader'],
    ]);
  });
});
