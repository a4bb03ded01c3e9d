/**
 * Child process: rotates the credential directory with the product's CredentialDirectory.
 *
 *   node writer.ts <dir> <startGen> <count>     writes generations startGen .. startGen+count-1, then exits
 *   node writer.ts <dir> <startGen> forever     writes until killed (the kill -9 test)
 *   node writer.ts <dir> <startGen> <count> naive   writes the visible files in place (no atomic swap):
 *                                                the control that shows the reader does catch tearing
 *
 * Prints `ready` before the first write and `committed <gen>` after each write returns (stdout to a pipe
 * is synchronous on Linux, so a line printed is a write that finished).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CredentialDirectory } from '../../../src/adapters/credential-dir.ts';
import { CREDENTIAL_FILES, generationFiles, generationSet } from './generation.ts';

const [dir, startArg, countArg, mode] = process.argv.slice(2);
if (!dir || !startArg || !countArg) throw new Error('usage: writer.ts <dir> <startGen> <count|forever>');
const start = Number(startArg);
const end = countArg === 'forever' ? Number.POSITIVE_INFINITY : start + Number(countArg);
const sink = new CredentialDirectory({ dir, fileMode: 0o440 });
const t0 = performance.now();
process.stdout.write('ready\n');
for (let gen = start; gen < end; gen++) {
  if (mode === 'naive') {
    const files = generationFiles(gen);
    for (const name of CREDENTIAL_FILES) await writeFile(path.join(dir, name), files[name]);
  } else {
    await sink.write(generationSet(gen));
  }
  process.stdout.write(`committed ${gen}\n`);
}
process.stdout.write(
  `done ${JSON.stringify({ written: end - start, ms: Math.round(performance.now() - t0) })}\n`,
);
