// Static rules for the Dockerfile and .dockerignore (no Docker engine here: nothing is built).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VARIABLES } from '../../src/config/schema.ts';
import { execForm, instructions, stages } from './dockerfile.ts';
import { ROOT, readText } from './support.ts';

/** Problems with how a FROM image is pinned. */
function pinProblems(image: string, earlierStages: ReadonlySet<string>): string[] {
  if (earlierStages.has(image)) return [];
  const [ref, digest] = image.split('@');
  const lastSlash = (ref ?? '').lastIndexOf('/');
  const colon = (ref ?? '').indexOf(':', lastSlash + 1);
  const tag = colon < 0 ? undefined : (ref ?? '').slice(colon + 1);
  const problems: string[] = [];
  if (image.includes('$')) problems.push(`${image}: image from a build argument cannot be checked`);
  if (tag === undefined) problems.push(`${image}: no tag`);
  else if (tag === 'latest') problems.push(`${image}: latest`);
  else if (!/\d/.test(tag) && digest === undefined)
    problems.push(`${image}: tag without a version and no digest`);
  if (digest !== undefined && !/^sha256:[a-f0-9]{64}$/.test(digest))
    problems.push(`${image}: malformed digest`);
  return problems;
}

const dockerfile = readText(join(ROOT, 'Dockerfile'));
const all = instructions(dockerfile);
const st = stages(all);
const final = st.at(-1);
const SECRET_NAME = /(SECRET|TOKEN|PASSW(OR)?D|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|(^|_)KEY($|_))/i;

describe('Dockerfile', () => {
  it('is multi-stage: a node:24 build stage and a distroless nodejs24 runtime', () => {
    expect(st.length).toBeGreaterThanOrEqual(2);
    expect(st[0]?.image).toMatch(/^node:24\.\d+\.\d+-[a-z]+-slim(@sha256:[a-f0-9]{64})?$/);
    expect(final?.image).toMatch(/^gcr\.io\/distroless\/nodejs24-debian12:nonroot(@sha256:[a-f0-9]{64})?$/);
  });

  it('pins every FROM (no latest, a versioned tag or a digest)', () => {
    const seen = new Set<string>();
    const problems: string[] = [];
    for (const s of st) {
      problems.push(...pinProblems(s.image, seen));
      if (s.name) seen.add(s.name);
    }
    expect(problems).toEqual([]);
  });

  it('the pin rules reject what they should', () => {
    const none = new Set<string>();
    expect(pinProblems('node', none)).toEqual(['node: no tag']);
    expect(pinProblems('node:latest', none)).toEqual(['node:latest: latest']);
    expect(pinProblems('gcr.io/distroless/nodejs24-debian12:nonroot', none)).toHaveLength(1);
    expect(pinProblems('localhost:5000/node', none)).toEqual(['localhost:5000/node: no tag']);
    expect(pinProblems('build', new Set(['build']))).toEqual([]);
  });

  it('build Node satisfies package.json engines; runtime Node is the same major', () => {
    const pkg = JSON.parse(readText(join(ROOT, 'package.json'))) as { engines?: { node?: string } };
    const min = /(\d+)\.(\d+)/.exec(pkg.engines?.node ?? '') ?? [];
    const build = /^node:(\d+)\.(\d+)/.exec(st[0]?.image ?? '') ?? [];
    const [bMaj, bMin, mMaj, mMin] = [build[1], build[2], min[1], min[2]].map(Number) as [
      number,
      number,
      number,
      number,
    ];
    expect(
      bMaj > mMaj || (bMaj === mMaj && bMin >= mMin),
      `${st[0]?.image} vs engines ${pkg.engines?.node}`,
    ).toBe(true);
    expect(final?.image).toContain(`nodejs${bMaj}-`);
  });

  it('build stage runs npm ci and npm run build', () => {
    const runs = (st[0]?.body ?? [])
      .filter((i) => i.op === 'RUN')
      .map((i) => i.args)
      .join('\n');
    expect(runs).toMatch(/\bnpm ci\b/);
    expect(runs).toMatch(/\bnpm run build\b/);
  });

  it('final stage runs as a non-root numeric USER', () => {
    const users = (final?.body ?? []).filter((i) => i.op === 'USER');
    const user = users.at(-1)?.args ?? '';
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(
      user
        .split(':')
        .map(Number)
        .every((n) => n > 0),
    ).toBe(true);
    expect(user.split(':')[0]).toBe('65532');
  });

  it('no ENV/ARG bakes a secret-looking value into the image', () => {
    const offenders: string[] = [];
    for (const i of all.filter((x) => x.op === 'ENV' || x.op === 'ARG')) {
      for (const m of i.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)(?:=|\s+)("[^"]*"|\S+)?/g)) {
        if (SECRET_NAME.test(m[1] ?? '') && (m[2] ?? '') !== '') offenders.push(`line ${i.line}: ${m[1]}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('final stage copies only the bundles, their notices and the code cache, and runs the fast start: ENTRYPOINT = node + sizing flags + /app/sts-sidecar.cjs, CMD = run', () => {
    const copies = (final?.body ?? []).filter((i) => i.op === 'COPY' || i.op === 'ADD');
    expect(copies.length).toBeGreaterThan(0);
    const bundleCopy = copies.find((c) => /dist\/sts-sidecar\.mjs\s/.test(c.args));
    expect(bundleCopy?.args).toMatch(/--from=build\b/);
    for (const c of copies) {
      const srcs = c.args
        .split(/\s+/)
        .filter((a) => !a.startsWith('--'))
        .slice(0, -1);
      expect(
        srcs.every((s) =>
          /dist\/sts-sidecar\.(mjs(\.LEGAL\.txt)?|cjs|code\.cjs)$|\/sts-sidecar\.code\.cjs\.cache$|LICENSE|NOTICE/.test(
            s,
          ),
        ),
        c.args,
      ).toBe(true);
    }
    const entry = execForm((final?.body ?? []).filter((i) => i.op === 'ENTRYPOINT').at(-1)?.args ?? 'null');
    expect(entry[0]).toMatch(/\/node$/);
    // node [sizing flags] <loader>: the loader, the bundle and the cache the final stage copies, side by side.
    const loader = entry.at(-1)!;
    const dest = (re: RegExp) =>
      copies
        .find((c) => re.test(c.args))
        ?.args.split(/\s+/)
        .at(-1);
    expect(loader).toBe(dest(/dist\/sts-sidecar\.cjs\s/));
    expect(dest(/dist\/sts-sidecar\.code\.cjs\s/)).toBe(loader.replace(/\.cjs$/, '.code.cjs'));
    expect(dest(/\/sts-sidecar\.code\.cjs\.cache\s/)).toBe(loader.replace(/\.cjs$/, '.code.cjs.cache'));
    // Only sizing flags: a flag that changes V8's flag hash makes V8 reject the code cache.
    for (const f of entry.slice(1, -1)) expect(f).toMatch(/^--max-(semi|old)-space-size=\d+$/);
    const cmd = execForm((final?.body ?? []).filter((i) => i.op === 'CMD').at(-1)?.args ?? 'null');
    expect(cmd).toEqual(['run']);
  });

  it("the code cache is produced by the runtime image's own Node with the ENTRYPOINT's flags: a stage FROM the same image runs scripts/code-cache.mjs", () => {
    const cacheCopy = (final?.body ?? []).find(
      (i) => i.op === 'COPY' && /\/sts-sidecar\.code\.cjs\.cache\s/.test(i.args),
    );
    const from = /--from=(\S+)/.exec(cacheCopy?.args ?? '')?.[1];
    const stage = st.find((s) => s.name === from);
    expect(stage?.image).toBe(final?.image);
    const entry = execForm((final?.body ?? []).filter((i) => i.op === 'ENTRYPOINT').at(-1)?.args ?? 'null');
    const runs = (stage?.body ?? []).filter((i) => i.op === 'RUN').map((i) => execForm(i.args));
    const produce = runs.find((r) => r.some((a) => a.endsWith('/code-cache.mjs')));
    expect(produce?.[0]).toBe(entry[0]);
    expect(produce?.slice(1, -2)).toEqual(entry.slice(1, -1));
    const produced = `${produce?.at(-1)}.cache`;
    expect(
      cacheCopy?.args
        .split(/\s+/)
        .filter((a) => !a.startsWith('--'))
        .at(0),
    ).toBe(produced);
    // The shipped fast start is smoke-tested in the final filesystem.
    const smoke = (final?.body ?? []).filter((i) => i.op === 'RUN').map((i) => execForm(i.args));
    expect(smoke.some((r) => r.at(-2) === entry.at(-1) && r.at(-1) === '--version')).toBe(true);
  });

  it('exposes the sidecar HTTP port, has OCI labels and no HEALTHCHECK', () => {
    const port = VARIABLES.STS_SIDECAR_LISTEN.default.split(':')[1];
    expect((final?.body ?? []).filter((i) => i.op === 'EXPOSE').map((i) => i.args)).toEqual([port]);
    const labels = (final?.body ?? [])
      .filter((i) => i.op === 'LABEL')
      .map((i) => i.args)
      .join(' ');
    for (const k of ['title', 'description', 'source', 'version', 'revision', 'created', 'licenses']) {
      expect(labels).toContain(`org.opencontainers.image.${k}=`);
    }
    expect(all.filter((i) => i.op === 'HEALTHCHECK')).toEqual([]);
  });

  it('the build script exists and writes dist/sts-sidecar.mjs', () => {
    const pkg = JSON.parse(readText(join(ROOT, 'package.json'))) as {
      scripts?: Record<string, string>;
      bin?: Record<string, string>;
    };
    const build = pkg.scripts?.build ?? '';
    expect(build).not.toBe('');
    expect(pkg.bin?.['sts-sidecar']).toBe('dist/sts-sidecar.mjs');
    const script = /\bnode\s+(\S+\.m?js)\b/.exec(build)?.[1];
    expect(script, `scripts.build runs a node script: ${build}`).toBeDefined();
    const path = join(ROOT, script ?? '');
    expect(existsSync(path), `${script} exists`).toBe(true);
    if (existsSync(path)) expect(readText(path)).toMatch(/dist\/sts-sidecar\.mjs|['"]sts-sidecar\.mjs['"]/);
  });
});

describe('.dockerignore', () => {
  const patterns = readText(join(ROOT, '.dockerignore'))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));

  /** Docker-style match: a pattern excludes a path or any of its parents. */
  function excluded(path: string): boolean {
    let out = false;
    for (const raw of patterns) {
      const negate = raw.startsWith('!');
      const p = (negate ? raw.slice(1) : raw).replace(/^\/+/, '').replace(/\/+$/, '');
      const re = new RegExp(
        `^${p
          .split('**')
          .map((part) =>
            part
              .replace(/[.+^${}()|[\]\\]/g, '\\$&')
              .replace(/\*/g, '[^/]*')
              .replace(/\?/g, '[^/]'),
          )
          .join('.*')}(/.*)?$`,
      );
      if (re.test(path)) out = !negate;
    }
    return out;
  }

  it('excludes node_modules, dist, .git, test data and local state', () => {
    for (const p of [
      'node_modules',
      'node_modules/zod/package.json',
      'dist/sts-sidecar.mjs',
      '.git/HEAD',
      '.stack/x',
      '.demo/x',
      'test/k8s/support.ts',
      'scripts/node24/node_modules/node/bin/node',
      'src/x.test.ts',
    ]) {
      expect(excluded(p), p).toBe(true);
    }
  });

  it('keeps everything the build stage COPYs', () => {
    const sources = (st[0]?.body ?? [])
      .filter((i) => i.op === 'COPY' && !i.args.includes('--from'))
      .flatMap((i) =>
        i.args
          .split(/\s+/)
          .filter((a) => !a.startsWith('--'))
          .slice(0, -1),
      )
      .map((s) => s.replace(/\/$/, ''));
    expect(sources).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'src']));
    for (const s of sources) {
      expect(excluded(s), `${s} is excluded`).toBe(false);
      expect(existsSync(join(ROOT, s)), `${s} exists`).toBe(true);
    }
    expect(excluded('scripts/build.mjs')).toBe(false);
    expect(excluded('src/config/schema.ts')).toBe(false);
  });
});
