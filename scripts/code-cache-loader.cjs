// The sidecar's fast start (docs/benchmarks.md, issue 21): runs the CommonJS bundle next to this file with
// V8's code cache for it, produced at build time by scripts/code-cache.mjs after running `once` against
// in-process fakes. With the cache, the functions of a start-up and an exchange need no parsing or
// compilation; without it (missing file, or a cache V8 rejects: another Node binary or V8 flags that
// change its flag hash), the bundle is compiled as usual and runs the same. Nothing else differs from
// `node dist/sts-sidecar.mjs`: same code, same argv, same process.
/* global __dirname */
'use strict';
const { readFileSync } = process.getBuiltinModule('node:fs');
const { createRequire, wrap } = process.getBuiltinModule('node:module');
const path = process.getBuiltinModule('node:path');
const { Script } = process.getBuiltinModule('node:vm');

const file = path.join(__dirname, 'sts-sidecar.code.cjs');
let cachedData;
try {
  cachedData = readFileSync(`${file}.cache`);
} catch {
  // no cache: compile from source
}
const script = new Script(wrap(readFileSync(file, 'utf8')), { filename: file, cachedData });
const module_ = { exports: {} };
script
  .runInThisContext()
  .call(module_.exports, module_.exports, createRequire(file), module_, file, __dirname);
