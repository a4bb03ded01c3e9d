/**
 * The startup snapshot (dist/sts-sidecar.blob, written by `npm run build`): it runs the sidecar's own
 * commands, refuses to load in another Node binary with a clear message, and its build refuses values
 * that would be frozen into every process. The process-level suites run against it as a whole through
 * vitest.snapshot.config.ts (STSTEST_LAUNCHER=snapshot).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, SNAPSHOT_BLOB, sidecarArgv } from '../support/sidecar-process.ts';

const pkg = (await import('../../package.json', { with: { type: 'json' } })).default as { version: string };

/** A Node binary other than the one running the tests, if the machine has one (Debian's Node 20 here). */
function otherNode(): string | undefined {
  for (const candidate of ['/usr/bin/node', '/usr/local/bin/node']) {
    if (!existsSync(candidate)) continue;
    const v = spawnSync(candidate, ['--version'], { encoding: 'utf8' }).stdout.trim();
    if (v !== '' && v !== process.version) return candidate;
  }
  return undefined;
}
const other = otherNode();

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('startup snapshot', () => {
  it('is built by npm run build and runs the sidecar: --version is the sidecar version, not Node', () => {
    expect(existsSync(SNAPSHOT_BLOB), `${SNAPSHOT_BLOB} (npm run build)`).toBe(true);
    const r = spawnSync(process.execPath, sidecarArgv(['--version'], [], 'snapshot'), { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
    const usage = spawnSync(process.execPath, sidecarArgv(['nonsense'], [], 'snapshot'), {
      encoding: 'utf8',
    });
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain('unknown command: nonsense');
  });

  it.skipIf(other === undefined)(
    `another Node binary refuses the blob with exit 14 naming both versions${other ? '' : ' (skipped: no second Node binary on this machine)'}`,
    () => {
      const r = spawnSync(other!, ['--snapshot-blob', SNAPSHOT_BLOB, '--', '--version'], {
        encoding: 'utf8',
      });
      expect(r.status).toBe(14);
      expect(r.stderr).toContain('Failed to load the startup snapshot');
      expect(r.stderr).toContain(process.versions.node);
    },
  );

  it('the snapshot build fails when module scope calls crypto.randomUUID or AbortSignal.timeout', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'sts-snapshot-guard-'));
    dirs.push(dir);
    // The snapshot builder's require() only loads built-ins: the guard is inlined, as esbuild does.
    const guard = await readFile(path.join(REPO_ROOT, 'scripts', 'snapshot-guard.cjs'), 'utf8');
    for (const call of ["require('node:crypto').randomUUID()", 'AbortSignal.timeout(1000)']) {
      const entry = path.join(dir, 'entry.cjs');
      await writeFile(entry, `${guard}\n${call};\n`);
      const r = spawnSync(
        process.execPath,
        ['--snapshot-blob', path.join(dir, 'x.blob'), '--build-snapshot', entry],
        { encoding: 'utf8' },
      );
      expect(r.status, call).not.toBe(0);
      expect(r.stderr).toContain('while building the startup snapshot');
    }
    // Control: the same entry without the call builds.
    const entry = path.join(dir, 'ok.cjs');
    await writeFile(entry, guard);
    const ok = spawnSync(
      process.execPath,
      ['--snapshot-blob', path.join(dir, 'ok.blob'), '--build-snapshot', entry],
      {
        encoding: 'utf8',
      },
    );
    expect(ok.status, ok.stderr).toBe(0);
  });
});
