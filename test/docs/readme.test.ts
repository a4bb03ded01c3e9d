/** The README is part of the interface: its tables must match the code. */
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { REQUIRED_VARIABLES, VARIABLES, VARIABLE_NAMES } from '../../src/config/schema.ts';
import { REPO_ROOT } from '../support/sidecar-process.ts';

const readme = readFileSync(`${REPO_ROOT}/README.md`, 'utf8');
const errors = readFileSync(`${REPO_ROOT}/src/errors.ts`, 'utf8');
const testAll = readFileSync(`${REPO_ROOT}/scripts/test-all.sh`, 'utf8');

describe('README', () => {
  it('starts with the two commands: demo, and the whole suite that .ci/run runs', () => {
    const firstBlock = readme.split('```')[1] ?? '';
    expect(firstBlock).toContain('bash scripts/demo.sh');
    expect(firstBlock).toContain('bash scripts/test-all.sh');
    expect(readFileSync(`${REPO_ROOT}/.ci/run`, 'utf8')).toMatch(/^bash scripts\/test-all\.sh\b/m);
    expect(testAll).toMatch(/^npm test$/m);
  });

  it('the whole-suite command makes every server the tests can require mandatory', () => {
    const sources = readdirSync(`${REPO_ROOT}/test`, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => readFileSync(`${REPO_ROOT}/test/${f}`, 'utf8'))
      .join('\n');
    const required = new Set([...sources.matchAll(/\b(STSTEST_REQUIRE_[A-Z_]+)\b/g)].map((m) => m[1]!));
    expect(required.size).toBeGreaterThan(5);
    for (const name of required) {
      expect(testAll, name).toMatch(new RegExp(`^export .*\\b${name}=1\\b`, 'm'));
    }
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
