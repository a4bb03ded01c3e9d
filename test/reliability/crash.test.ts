// Issue 5.2 (short version): kill -9 during writes, then restart. The 500-kill proof is crash.stress.test.ts.
import { lstat, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack, type LocalStack } from '../stack/local-stack.ts';
import { startSidecar } from '../support/sidecar-process.ts';
import { CREDENTIAL_FILES } from '../../src/adapters/credential-dir.ts';
import { runCrashes } from './support/crash.ts';
import { healthPort, httpGet, poller, recordIssuedSecrets } from './support/harness.ts';

describe('crash safety (short)', () => {
  it('30 kill -9 during writes: always one complete set visible, leftovers removed by prepare()', async () => {
    const r = await runCrashes(30);
    console.info(`[reliability] crash kills=${r.kills} ${JSON.stringify(r)}`);
    expect(r.problems).toEqual([]);
    expect(r.badStates).toBe(0);
    expect(r.uncleaned).toBe(0);
  });

  it('control: the same checks reject a writer that writes the visible files in place', async () => {
    const r = await runCrashes(5, 40, 'naive');
    expect(r.badStates).toBeGreaterThan(0);
  });

  describe('the real sidecar restarted after kill -9', () => {
    let stack: LocalStack;
    beforeAll(async () => {
      stack = await startLocalStack({ sts: 'stand-in' });
    });
    afterAll(async () => {
      recordIssuedSecrets(stack);
      await stack?.close();
    });

    it('keeps serving the old set, cleans stale generations and is ready within 1 s of the exchange', async () => {
      const env = {
        ...stack.env,
        STS_SIDECAR_STS_MIN_DURATION_SECONDS: '900',
        STS_SIDECAR_TTL_SECONDS: '3600',
      };
      const first = startSidecar(env, ['run'], { label: 'crash-first' });
      await first.waitForEvent('lease.acquired', 20_000);
      first.kill('SIGKILL');
      expect((await first.exited).signal).toBe('SIGKILL');
      const oldKey = await readFile(path.join(stack.outputDir, 'access-key'), 'utf8');

      // What an interrupted write leaves behind: a half-built generation, a swap link, a link temporary.
      const stale = '..2020_01_01_00_00_00.deadbeef';
      await mkdir(path.join(stack.outputDir, stale));
      await writeFile(path.join(stack.outputDir, stale, 'access-key'), 'half');
      await symlink(stale, path.join(stack.outputDir, '..data_tmp'));
      await symlink('..data/access-key', path.join(stack.outputDir, '..access-key.tmp'));

      // An app reading across the restart must never find the credentials missing.
      const reads = poller(5, () =>
        readFile(path.join(stack.outputDir, 'access-key'), 'utf8').catch(() => null),
      );
      const spawnedAt = Date.now();
      const second = startSidecar(env, ['run'], { label: 'crash-second' });
      try {
        const port = await healthPort(second);
        const ready = poller(10, () =>
          httpGet(port, '/readyz').then(
            (r) => r.status,
            () => 0,
          ),
        );
        const acquired = await second.waitForEvent('lease.acquired', 20_000);
        await new Promise((r) => setTimeout(r, 300));
        await ready.stop();
        await reads.stop();
        const acquiredAt = Date.parse(String(acquired.time));
        const firstReady = ready.samples.find((s) => s.v === 200);
        expect(firstReady, 'readyz never answered 200').toBeDefined();
        const delay = firstReady!.t - acquiredAt;
        console.info(
          `[reliability] restart after kill -9: ready ${delay} ms after lease.acquired, ${firstReady!.t - spawnedAt} ms after spawn; ` +
            `readyz before the exchange: ${[...new Set(ready.samples.filter((s) => s.t < acquiredAt).map((s) => s.v))].join(',')}`,
        );
        expect(delay).toBeLessThanOrEqual(1000);
        // Not ready on the strength of a set this process did not write.
        expect(ready.samples.filter((s) => s.t < acquiredAt - 50).every((s) => s.v !== 200)).toBe(true);

        expect(reads.samples.length).toBeGreaterThan(10);
        expect(reads.samples.filter((s) => s.v === null)).toEqual([]);
        expect(reads.samples[0]!.v).toBe(oldKey);
        expect(reads.samples.at(-1)!.v).toBe(acquired.access_key_id);

        const entries = (await readdir(stack.outputDir)).sort();
        expect(entries.filter((n) => n.startsWith('.') && n !== '..data')).toHaveLength(1);
        expect(entries).not.toContain(stale);
        expect(entries).not.toContain('..data_tmp');
        expect(entries).not.toContain('..access-key.tmp');
        for (const n of CREDENTIAL_FILES)
          expect((await lstat(path.join(stack.outputDir, n))).isSymbolicLink()).toBe(true);
      } finally {
        second.kill();
        await second.exited;
      }
    });
  });
});
