// The image built without Docker (scripts/build-image.sh) against the Dockerfile, the reference build: the
// same entrypoint, command, user, working directory, environment, port, and the runtime stage's files at
// the same paths with the same owner and modes. Builds the archive for real (about 10 s) and reads it.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execForm, instructions, stages, type Instruction } from './dockerfile.ts';
import { ROOT, readText } from './support.ts';

const runtime = stages(instructions(readText(join(ROOT, 'Dockerfile')))).at(-1)?.body ?? [];
const last = (op: string): Instruction | undefined => runtime.filter((i) => i.op === op).at(-1);

interface ImageConfig {
  config: {
    User?: string;
    Entrypoint?: string[];
    Cmd?: string[];
    WorkingDir?: string;
    Env?: string[];
    ExposedPorts?: Record<string, unknown>;
    Labels?: Record<string, string>;
  };
}

interface LayerEntry {
  readonly mode: string;
  readonly owner: string;
  readonly path: string;
}

describe('scripts/build-image.sh agrees with the Dockerfile', () => {
  let dir: string;
  let config: ImageConfig;
  let layer: Map<string, LayerEntry>;
  let layerFile: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sts-image-'));
    const out = join(dir, 'image.tar');
    execFileSync('bash', [join(ROOT, 'scripts', 'build-image.sh'), '--out', out], {
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 300_000,
    });
    execFileSync('tar', ['-xf', out, '-C', dir]);
    const blob = (digest: string) => join(dir, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as {
      manifests: { digest: string }[];
    };
    const manifest = JSON.parse(readFileSync(blob(index.manifests[0]?.digest ?? ''), 'utf8')) as {
      config: { digest: string };
      layers: { digest: string }[];
    };
    config = JSON.parse(readFileSync(blob(manifest.config.digest), 'utf8')) as ImageConfig;
    layerFile = blob(manifest.layers[0]?.digest ?? '');
    layer = new Map();
    const listing = execFileSync('tar', ['--numeric-owner', '-tvf', layerFile], { maxBuffer: 64 << 20 });
    for (const line of listing.toString('utf8').split('\n')) {
      const m = /^(\S+) (\d+)\/(\d+)\s+\d+ \S+ \S+ \.(\/\S*)/.exec(line);
      const path = (m?.[4] ?? '').replace(/(.)\/$/, '$1');
      if (m) layer.set(path, { mode: m[1] ?? '', owner: `${m[2]}:${m[3]}`, path });
    }
  }, 300_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("ENTRYPOINT and CMD are the Dockerfile's, and the entrypoint's Node is in the image, executable", () => {
    const entrypoint = execForm(last('ENTRYPOINT')?.args ?? 'null');
    expect(config.config.Entrypoint).toEqual(entrypoint);
    expect(config.config.Cmd).toEqual(execForm(last('CMD')?.args ?? 'null'));
    const node = layer.get(entrypoint[0] ?? '');
    expect(node?.mode, `${entrypoint[0]} in the layer`).toMatch(/^-r.x/);
  });

  it('USER, WORKDIR, EXPOSE and every ENV of the runtime stage', () => {
    expect(config.config.User).toBe(last('USER')?.args);
    expect(config.config.WorkingDir).toBe(last('WORKDIR')?.args);
    for (const port of (last('EXPOSE')?.args ?? '').split(/\s+/).filter(Boolean))
      expect(Object.keys(config.config.ExposedPorts ?? {})).toContain(
        port.includes('/') ? port : `${port}/tcp`,
      );
    const envs = runtime.filter((i) => i.op === 'ENV').flatMap((i) => i.args.split(/\s+/));
    expect(envs.length).toBeGreaterThan(0);
    for (const e of envs) expect(config.config.Env).toContain(e.replace(/"/g, ''));
    expect(config.config.Labels?.['org.opencontainers.image.title']).toBe('sts-sidecar');
  });

  it("the runtime stage's files are at the same paths, root-owned, with the same modes; the user exists", () => {
    const copies = runtime.filter((i) => i.op === 'COPY');
    expect(copies.length).toBeGreaterThan(0);
    for (const c of copies) {
      const dest = c.args.split(/\s+/).at(-1) ?? '';
      const entry = layer.get(dest);
      expect(entry, `${dest} (${c.args}) in the image`).toBeDefined();
      const chown = /--chown=(\S+)/.exec(c.args)?.[1];
      if (chown) expect(entry?.owner).toBe(chown);
      const chmod = /--chmod=(\d+)/.exec(c.args)?.[1];
      if (chmod) expect(entry?.mode, dest).toBe(symbolic(parseInt(chmod, 8)));
    }
    const uid = (last('USER')?.args ?? '').split(':')[0];
    const passwd = execFileSync('tar', ['-xOf', layerFile, './etc/passwd']).toString('utf8');
    expect(passwd.split('\n').some((l) => l.split(':')[2] === uid)).toBe(true);
    // Nothing in the image is writable by its user: it runs with readOnlyRootFilesystem: true.
    const writable = [...layer.values()].filter(
      (e) => e.owner.split(':')[0] === uid || (/^.{8}w/.test(e.mode) && e.path !== '/tmp'),
    );
    expect(writable.map((e) => e.path)).toEqual([]);
  });
});

function symbolic(mode: number): string {
  const bits = 'rwxrwxrwx';
  return `-${[...bits].map((b, i) => ((mode >> (8 - i)) & 1 ? b : '-')).join('')}`;
}
