/**
 * A benchmark module that `npm run bench` runs after the built-in ones: it appends its rows (to the
 * results table) and notes (to the details list). Register one in the SECTIONS list of bench/run.ts.
 */
import type { Row } from './report.ts';

export interface BenchContext {
  readonly rows: Row[];
  readonly notes: string[];
  /** --quick: fewer runs, figures not to be quoted. */
  readonly quick: boolean;
  readonly log: (message: string) => void;
}

export interface BenchSection {
  /** Used with --only=<name> and in the progress log. */
  readonly name: string;
  run(ctx: BenchContext): Promise<void>;
}
