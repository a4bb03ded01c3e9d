/** The README is part of the interface: its tables must match the code. */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { REQUIRED_VARIABLES, VARIABLES, VARIABLE_NAMES } from '../../src/config/schema.ts';
import { REPO_ROOT } from '../support/sidecar-process.ts';

const readme = readFileSync(`${REPO_ROOT}/README.md`, 'utf8');
const errors = readFileSync(`${REPO_ROOT}/src/errors.ts`, 'utf8');

describe('README', () => {
  it('starts with the two commands: demo and tests', () => {
    const firstBlock = readme.split('```')[1] ?? '';
    expect(firstBlock).toContain('bash scripts/demo.sh');
    expect(firstBlock).toContain('npm test');
    expect(readFileSync(`${REPO_ROOT}/.ci/run`, 'utf8')).toMatch(/^(\w+=\S+ )*npm test\b/m);
  });

  it('documents every variable with its real default', () => {
    for (const name of VARIABLE_NAMES) {
      const row = readme.split('\n').find((l) => l.startsWith(`| \`${name}\``));
      expect(row, name).toBeDefined();
      const d = VARIABLES[name].default;
      const expected = REQUIRED_VARIABLES.includes(name)
        ? '**required**'
        : d === undefined
          ? 'unset'
          : d === ''
            ? 'empty'
            : `\`${d}\``;
      expect(row!.split('|')[2]!.trim(), name).toBe(expected);
    }
  });

  it('lists every error code', () => {
    const codes = [...errors.matchAll(/\| '(ERR_[A-Z_]+)'/g)].map((m) => m[1]!);
    expect(codes.length).toBeGreaterThan(20);
    for (const code of codes) expect(readme, code).toContain(`\`${code}\``);
  });

  it('lists every log event the code emits', () => {
    const parts = readdirSync(`${REPO_ROOT}/src/parts`).filter((f) => !f.endsWith('.test.ts'));
    const sources = [
      'src/lease-events.ts',
      'src/app.ts',
      'src/main.ts',
      ...parts.map((f) => `src/parts/${f}`),
    ]
      .map((f) => readFileSync(`${REPO_ROOT}/${f}`, 'utf8'))
      .join('\n');
    const events = new Set([...sources.matchAll(/'((?:lease|token|sidecar)\.[a-z_]+)'/g)].map((m) => m[1]!));
    events.delete('sidecar.wipe_failed');
    for (const e of events) expect(readme, e).toContain(`\`${e}\``);
  });
});
