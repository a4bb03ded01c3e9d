/**
 * The fast start the image runs (dist/sts-sidecar.cjs, written by `npm run build`): the CommonJS bundle
 * with the V8 code cache scripts/code-cache.mjs produced by running `once` against in-process fakes. V8
 * accepts that cache under the image's flags; without it, or with one V8 rejects (another Node binary, a
 * flag that changes V8's flag hash), the same code runs compiled from source. The process-level suites run
 * against it as a whole through vitest.snapshot.config.ts (STSTEST_LAUNCHER=fast).
 */
import { spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import Module from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Script } from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { FAST_START, REPO_ROOT } from '../support/sidecar-process.ts';

const pkg = (await import('../../package.json', { with: { type: 'json' } })).default as { version: string };
const CODE = path.join(REPO_ROOT, 'dist', 'sts-sidecar.code.cjs');
/** The image's ENTRYPOINT flags (Dockerfile); test/k8s/dockerfile.test.ts checks they are sizing flags only. */
const IMAGE_FLAGS = ['--max-semi-space-size=1'];

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Whether V8 in a child Node with `flags` accepts `cache` for the bundle, as the loader would compile it. */
function cacheAccepted(flags: readonly string[], cacheFile: string): boolean {
  const probe = `const fs=require('node:fs');const {Script}=require('node:vm');const M=require('node:module');
const s=new Script(M.wrap(fs.readFileSync(${JSON.stringify(CODE)},'utf8')),{filename:${JSON.stringify(CODE)},cachedData:fs.readFileSync(${JSON.stringify(cacheFile)})});
process.stdout.write(String(!s.cachedDataRejected));`;
  const r = spawnSync(process.execPath, [...flags, '-e', probe], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout === 'true';
}

describe('fast start (code cache)', () => {
  it('is built by npm run build and runs the sidecar: --version, and usage errors exit 2', () => {
    const r = spawnSync(process.execPath, [...IMAGE_FLAGS, FAST_START, '--version'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
    const usage = spawnSync(process.execPath, [FAST_START, 'nonsense'], { encoding: 'utf8' });
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain('unknown command: nonsense');
  });

  it("V8 accepts the build's cache under the image's flags, and rejects it under a flag that changes its flag hash", async () => {
    expect(cacheAccepted(IMAGE_FLAGS, `${CODE}.cache`)).toBe(true);
    expect(cacheAccepted(['--lite-mode'], `${CODE}.cache`)).toBe(false);
    // The cache holds the compiled code of the exchange, not just of the top level (run at build time).
    const top = new Script(Module.wrap(await readFile(CODE, 'utf8')), { filename: CODE }).createCachedData();
    expect((await readFile(`${CODE}.cache`)).length).toBeGreaterThan(2 * top.length);
  });

  it('runs the same without a cache, with a rejected one and with a corrupt one', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'sts-fast-start-'));
    dirs.push(dir);
    await copyFile(FAST_START, path.join(dir, 'sts-sidecar.cjs'));
    await copyFile(CODE, path.join(dir, 'sts-sidecar.code.cjs'));
    const run = (flags: string[] = []) =>
      spawnSync(process.execPath, [...flags, path.join(dir, 'sts-sidecar.cjs'), '--version'], {
        encoding: 'utf8',
      });
    const none = run();
    expect(none.status, none.stderr).toBe(0);
    expect(none.stdout.trim()).toBe(pkg.version);
    await copyFile(`${CODE}.cache`, path.join(dir, 'sts-sidecar.code.cjs.cache'));
    const rejected = run(['--lite-mode']);
    expect(rejected.status, rejected.stderr).toBe(0);
    expect(rejected.stdout.trim()).toBe(pkg.version);
    await writeFile(path.join(dir, 'sts-sidecar.code.cjs.cache'), Buffer.alloc(4096, 7));
    const corrupt = run();
    expect(corrupt.status, corrupt.stderr).toBe(0);
    expect(corrupt.stdout.trim()).toBe(pkg.version);
  });
});
