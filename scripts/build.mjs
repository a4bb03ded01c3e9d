// Bundles the sidecar into one file, dist/sts-sidecar.mjs: what `once`, `run` and the tests run. Then
// builds the startup snapshot dist/sts-sidecar.blob from the same sources (docs/benchmarks.md): every
// module of the bundle is evaluated once at build time and the heap is saved, so that
// `node --snapshot-blob dist/sts-sidecar.blob <command>` starts without loading or evaluating anything.
//
// The blob only loads in the exact Node binary that built it (version, architecture, V8 flags hash):
// build it with the Node that will run it. `node scripts/build.mjs --no-snapshot` skips it.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { chmod, copyFile, readFile, rm } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import path from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));
const outfile = path.join(root, 'dist', 'sts-sidecar.mjs');
// The snapshot's source, kept: the Dockerfile builds the blob from it again with the image's own Node.
const snapshotBundle = path.join(root, 'dist', 'sts-sidecar.snapshot.cjs');
const blob = path.join(root, 'dist', 'sts-sidecar.blob');
const entry = path.join(root, 'src', 'main.ts');
/** The image's V8 flags (Dockerfile ENTRYPOINT): the code cache is produced under the same flag hash. */
const IMAGE_NODE_FLAGS = ['--max-semi-space-size=1'];
const define = { __STS_SIDECAR_VERSION__: JSON.stringify(pkg.version) };

/**
 * Built-ins the snapshot builder supports (copied from Node's lib/internal/main/mksnapshot.js). Every
 * other built-in (node:http, https, http2, tls, vm, ...) is swapped for a stand-in that loads it with
 * process.getBuiltinModule on first use, in both bundles: the snapshot cannot hold them, and a command
 * that never uses one (`once` never touches http2) never pays for loading it.
 */
const SNAPSHOT_BUILTINS = new Set([
  'assert',
  'assert/strict',
  'buffer',
  'console',
  'constants',
  'crypto',
  'diagnostics_channel',
  'dns',
  'events',
  'fs',
  'fs/promises',
  'net',
  'os',
  'path',
  'path/posix',
  'path/win32',
  'process',
  'punycode',
  'querystring',
  'stream',
  'stream/promises',
  'string_decoder',
  'sys',
  'timers',
  'timers/promises',
  'tty',
  'url',
  'util',
  'util/types',
  'v8',
  'zlib',
]);
const LAZY = builtinModules.filter(
  (m) => !m.startsWith('_') && !m.startsWith('node:') && !SNAPSHOT_BUILTINS.has(m),
);
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** esbuild plugin: `node:http` and friends become stand-ins that load the real module on first use. */
const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    const filter = new RegExp(`^(node:)?(${LAZY.map(escape).join('|')})$`);
    b.onResolve({ filter }, (args) => ({
      path: args.path.replace(/^node:/, ''),
      namespace: 'lazy-builtin',
    }));
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, async (args) => {
      const real = await import(`node:${args.path}`);
      const names = Object.keys(real.default ?? real).filter((k) => k !== 'default');
      const props = names.map((k) =>
        // Data read at load time (the SDK's HTTP handler reads http2.constants while loading) is copied.
        k === 'constants'
          ? `${JSON.stringify(k)}: { value: ${JSON.stringify(real[k])}, enumerable: true }`
          : `${JSON.stringify(k)}: { get: () => load()[${JSON.stringify(k)}], enumerable: true }`,
      );
      return {
        loader: 'js',
        contents: [
          `let m;`,
          `const load = () => (m ??= process.getBuiltinModule(${JSON.stringify(`node:${args.path}`)}));`,
          `module.exports = Object.defineProperties({}, {${props.join(',\n')}});`,
        ].join('\n'),
      };
    });
  },
};

const common = {
  bundle: true,
  platform: 'node',
  target: 'node22',
  minify: true,
  sourcemap: false,
  define,
  plugins: [lazyBuiltins],
  logLevel: 'warning',
};

const plain = await build({
  ...common,
  entryPoints: [entry],
  outfile,
  format: 'esm',
  legalComments: 'linked',
  metafile: true,
  // CommonJS dependencies call require() for Node built-ins and read __filename (write-file-atomic
  // names its temporaries after it); give the ESM bundle real ones.
  banner: {
    js: [
      '#!/usr/bin/env node',
      "import { createRequire as __stsCreateRequire } from 'node:module';",
      "import { fileURLToPath as __stsFileURLToPath } from 'node:url';",
      'const require = __stsCreateRequire(import.meta.url);',
      'const __filename = __stsFileURLToPath(import.meta.url);',
      "const __dirname = __filename.slice(0, __filename.lastIndexOf('/'));",
    ].join('\n'),
  },
});
await chmod(outfile, 0o755);
console.log(`built ${outfile}`);

// The fast start (issue 21): the same sources as one CommonJS script, which scripts/code-cache-loader.cjs
// (copied to dist/sts-sidecar.cjs) runs with V8's code cache for it. The cache is produced by running
// `once` against in-process fakes (scripts/code-cache.mjs) with the Node that runs the build; the
// Dockerfile produces it again with the runtime image's own Node.
const codeBundle = path.join(root, 'dist', 'sts-sidecar.code.cjs');
await build({ ...common, entryPoints: [entry], outfile: codeBundle, format: 'cjs', legalComments: 'none' });
await copyFile(
  path.join(root, 'scripts', 'code-cache-loader.cjs'),
  path.join(root, 'dist', 'sts-sidecar.cjs'),
);
await rm(`${codeBundle}.cache`, { force: true });
if (!process.argv.includes('--no-code-cache')) {
  const c = spawnSync(
    process.execPath,
    [...IMAGE_NODE_FLAGS, path.join(root, 'scripts', 'code-cache.mjs'), codeBundle],
    {
      cwd: root,
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', NODE_OPTIONS: '' },
    },
  );
  if (c.status !== 0) {
    process.stderr.write(c.stdout + c.stderr);
    throw new Error(`producing the code cache failed (exit ${c.status})`);
  }
  process.stdout.write(c.stdout);
}

if (!process.argv.includes('--no-snapshot')) {
  // Every source module of the plain bundle, whatever loads it (static import or `await import()`),
  // is imported up front, so its evaluation lands in the snapshot. main.ts comes last: when it sees
  // that a snapshot is being built it registers itself as the snapshot's main function instead of
  // running.
  const sources = Object.keys(plain.metafile.inputs)
    .filter((p) => p.startsWith('src/') && p !== 'src/main.ts')
    .sort();
  await build({
    ...common,
    stdin: {
      contents: ['scripts/snapshot-guard.cjs', ...sources, 'src/main.ts']
        .map((p) => `import ${JSON.stringify(`./${p}`)};`)
        .join('\n'),
      resolveDir: root,
      sourcefile: 'snapshot-entry.js',
      loader: 'js',
    },
    outfile: snapshotBundle,
    format: 'cjs',
    legalComments: 'none',
  });
  await rm(blob, { force: true });
  const r = spawnSync(process.execPath, ['--snapshot-blob', blob, '--build-snapshot', snapshotBundle], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  // Node only warns when a module it has not verified for snapshots is loaded at build time; the
  // result may misbehave at run time, so that is an error here.
  if (r.status !== 0 || /snapshot/i.test(r.stderr)) {
    await rm(blob, { force: true });
    process.stderr.write(r.stdout + r.stderr);
    throw new Error(`building the startup snapshot failed (exit ${r.status}); ${blob} not written`);
  }
  console.log(`built ${blob} (for Node ${process.version} at ${process.execPath})`);
}
