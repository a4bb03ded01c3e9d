/**
 * vitest globalSetup, listed first so that its teardown runs last. vitest runs the globalSetup teardowns
 * one after another, last setup first, and stops at the first that throws: a teardown that threw would
 * leave every stack set up before it running. A teardown that must fail the run (the node's `down`
 * reporting leftovers) defers its error here instead, and this teardown throws them all once the others
 * have run; vitest then reports "error during close" and exits non-zero.
 */

const KEY = Symbol.for('sts-sidecar.deferredTeardownErrors');
type Store = { [KEY]?: Error[] };

function deferred(): Error[] {
  const g = globalThis as Store;
  return (g[KEY] ??= []);
}

/** Records an error that fails the run at the end of the teardowns, and prints it now. */
export function deferTeardownError(err: Error): void {
  console.error(`[teardown] ${err.message}`);
  deferred().push(err);
}

export function setup(): void {
  deferred().length = 0;
}

export function teardown(): void {
  const errors = deferred().splice(0);
  if (errors.length === 1) throw errors[0]!;
  if (errors.length > 1) throw new AggregateError(errors, errors.map((e) => e.message).join('\n'));
}
