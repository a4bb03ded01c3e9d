// Bundles the sidecar into one file, dist/sts-sidecar.mjs: what `once`, `run`, the tests and the
// Dockerfile all run. One file means no module resolution across node_modules at start-up.
import { build } from 'esbuild';
import { chmod, readFile } from 'node:fs/promises';

const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
const outfile = new URL('../dist/sts-sidecar.mjs', import.meta.url).pathname;

await build({
  entryPoints: [new URL('../src/main.ts', import.meta.url).pathname],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  minify: true,
  legalComments: 'linked',
  sourcemap: false,
  define: { __STS_SIDECAR_VERSION__: JSON.stringify(pkg.version) },
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
  logLevel: 'warning',
});
await chmod(outfile, 0o755);
console.log(`built ${outfile}`);
