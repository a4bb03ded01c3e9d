/** The results table: printed to the terminal and written between markers into docs/benchmarks.md. */
import { readFile, writeFile } from 'node:fs/promises';

export const START = '<!-- bench:results:start (written by `npm run bench`; do not edit by hand) -->';
export const END = '<!-- bench:results:end -->';

export interface Row {
  readonly benchmark: string;
  readonly measured: string;
  readonly baseline: string;
  readonly ratio: string;
  readonly goal: string;
  readonly met: boolean | undefined;
}

export function markdownTable(rows: readonly Row[]): string {
  const head =
    '| # | Benchmark | Measured (median) | Baseline (median) | Ratio / figure | Goal | Met |\n|---|---|---|---|---|---|---|';
  const body = rows.map(
    (r, i) =>
      `| ${i + 1} | ${r.benchmark} | ${r.measured} | ${r.baseline} | ${r.ratio} | ${r.goal} | ${r.met === undefined ? '-' : r.met ? 'yes' : '**no**'} |`,
  );
  return [head, ...body].join('\n');
}

export function terminalTable(rows: readonly Row[]): string {
  const cols: (keyof Row)[] = ['benchmark', 'measured', 'baseline', 'ratio', 'goal', 'met'];
  const cell = (r: Row, c: keyof Row) =>
    c === 'met' ? (r.met === undefined ? '-' : r.met ? 'yes' : 'NO') : String(r[c]);
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r, c).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join(' | ');
  return [
    line(cols.map(String)),
    widths.map((w) => '-'.repeat(w)).join('-+-'),
    ...rows.map((r) => line(cols.map((c) => cell(r, c)))),
  ].join('\n');
}

/** Replaces the generated section of the document (between the markers), creating it if missing. */
export async function writeResultsSection(docPath: string, section: string): Promise<void> {
  let doc: string;
  try {
    doc = await readFile(docPath, 'utf8');
  } catch {
    doc = `# Benchmarks\n\n## Results\n\n${START}\n${END}\n`;
  }
  const a = doc.indexOf(START);
  const b = doc.indexOf(END);
  const block = `${START}\n\n${section.trim()}\n\n${END}`;
  doc =
    a >= 0 && b > a
      ? doc.slice(0, a) + block + doc.slice(b + END.length)
      : `${doc.trimEnd()}\n\n## Results\n\n${block}\n`;
  // Written the way `npm run lint` checks it (prettier), so a fresh run never fails the format check.
  const { format, resolveConfig } = await import('prettier');
  await writeFile(docPath, await format(doc, { ...(await resolveConfig(docPath)), filepath: docPath }));
}
