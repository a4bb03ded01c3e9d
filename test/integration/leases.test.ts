/**
 * Named leases (issue 19) through the built bundle, on the local stack with the STS stand-in: `once` writes
 * every lease and the profile file, `credential-process` refuses (which lease?), `check-config` lists them,
 * and the daemon starts lease i in its own one-second slot so the leases of a pod never call out together.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LEASE_START_SLOT_MS } from '../../src/domain/lease-start.ts';
import { readSet } from '../support/credentials.ts';
import { namedLeasesEnv } from '../support/named-leases.ts';
import { runSidecarCommand } from '../support/sidecar-process.ts';
import { useStackTeardown } from '../support/stack-teardown.ts';
import type { LocalStack } from '../stack/local-stack.ts';

const { stack, sidecar } = useStackTeardown();
const NAMES = ['alpha', 'beta', 'gamma'] as const;

/** The stack's environment with its single lease moved into a config file of three named leases. */
function namedEnv(s: LocalStack): Promise<Record<string, string>> {
  return namedLeasesEnv(
    s.env,
    s.dir,
    NAMES.map((name) => ({ name, bucket: s.bucket, prefix: `${s.prefix}${name}/`, actions: 'read,list' })),
  );
}

describe('named leases (sidecar process)', () => {
  it('once writes each lease into <OUTPUT_DIR>/<name> and the AWS profile file; exit 0', async () => {
    const s = await stack({ sts: 'stand-in' });
    const r = await runSidecarCommand(await namedEnv(s), ['once']);
    expect(r.code, r.stderr).toBe(0);
    const keys = new Set<string>();
    for (const name of NAMES) {
      const set = await readSet(path.join(s.outputDir, name));
      keys.add(set.accessKey);
      expect(r.lines.find((l) => l.event === 'lease.acquired' && l.lease === name)).toMatchObject({
        prefix: `${s.prefix}${name}/`,
      });
    }
    expect(keys.size).toBe(3);
    const config = await readFile(path.join(s.outputDir, 'aws-config'), 'utf8');
    for (const name of NAMES)
      expect(config).toContain(
        `[profile ${name}]\ncredential_process = cat ${path.join(s.outputDir, name, 'credentials.json')}\n`,
      );
  });

  it('once stops at the first failed lease with its exit code (4: denied)', async () => {
    const s = await stack({ sts: 'stand-in' });
    await s.writePolicy({
      rules: [
        {
          tenant: s.tenant,
          subject: '*',
          bucket: s.bucket,
          prefix: `${s.prefix}alpha/`,
          actions: ['read', 'list'],
          max_ttl_seconds: 3600,
        },
      ],
    });
    const r = await runSidecarCommand(await namedEnv(s), ['once']);
    expect(r.code).toBe(4);
    expect(r.lines.filter((l) => l.event?.startsWith('lease.')).map((l) => [l.event, l.lease])).toEqual([
      ['lease.acquired', 'alpha'],
      ['lease.denied', 'beta'],
    ]);
    await readSet(path.join(s.outputDir, 'alpha'));
  });

  it('credential-process refuses named leases (exit 2); check-config lists them', async () => {
    const s = await stack({ sts: 'stand-in' });
    const env = await namedEnv(s);
    const cp = await runSidecarCommand(env, ['credential-process']);
    expect(cp.code).toBe(2);
    expect(cp.stdout).toBe('');
    expect(cp.stderr).toContain('named leases');
    const check = await runSidecarCommand(env, ['check-config']);
    expect(check.code).toBe(0);
    const out = JSON.parse(check.stdout) as { config: { leases: { name: string; outputDir: string }[] } };
    expect(out.config.leases.map((l) => [l.name, l.outputDir])).toEqual(
      NAMES.map((n) => [n, path.join(s.outputDir, n)]),
    );
  });

  it('the daemon starts lease i inside its own slot [i, i+1) s after the first; sidecar.started lists the leases', async () => {
    const s = await stack({ sts: 'stand-in' });
    const p = sidecar({ ...(await namedEnv(s)), STS_SIDECAR_LOG_LEVEL: 'trace' }, 'leases-slots');
    const started = await p.waitForEvent('sidecar.started', 15_000);
    expect(started.leases).toEqual(
      NAMES.map((name) => ({
        name,
        bucket: s.bucket,
        prefix: `${s.prefix}${name}/`,
        actions: ['list', 'read'],
        ttl_seconds: 3600,
        output_dir: path.join(s.outputDir, name),
      })),
    );
    expect(started).not.toHaveProperty('bucket');
    const firstAttempt = async (name: string) =>
      Number(
        (await p.waitFor((l) => l.event === 'loop.attempt' && l.lease === name, 15_000, `${name} attempt`))
          .at_ms,
      );
    const [a, b, c] = [await firstAttempt('alpha'), await firstAttempt('beta'), await firstAttempt('gamma')];
    // Scheduling slack: the slot's bounds are the timer's; the process may run a little late, never early.
    const slack = 500;
    expect(b - a).toBeGreaterThanOrEqual(LEASE_START_SLOT_MS - 50);
    expect(b - a).toBeLessThan(2 * LEASE_START_SLOT_MS + slack);
    expect(c - a).toBeGreaterThanOrEqual(2 * LEASE_START_SLOT_MS - 50);
    expect(c - a).toBeLessThan(3 * LEASE_START_SLOT_MS + slack);
    for (const name of NAMES)
      await p.waitFor((l) => l.event === 'lease.acquired' && l.lease === name, 15_000, `${name} acquired`);
  });
});
