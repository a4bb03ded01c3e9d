/**
 * Per-test teardown for tests that start local stacks and sidecar processes: everything a test starts is
 * stopped after it, last started first, and a failing step does not keep the others from running.
 */
import { afterEach } from 'vitest';
import { startLocalStack, type LocalStack } from '../stack/local-stack.ts';
import { startSidecar, type SidecarProcess } from './sidecar-process.ts';

/** What a test file gets from useStackTeardown. */
export interface StackTeardown {
  /** Teardown steps of the running test; push more to have them run after it. */
  readonly cleanup: (() => Promise<unknown>)[];
  /** Starts a local stack that is closed after the test. */
  stack(options: Parameters<typeof startLocalStack>[0]): Promise<LocalStack>;
  /** Starts the sidecar (`run`) that is killed (SIGKILL) after the test. */
  sidecar(env: Record<string, string>, label: string): SidecarProcess;
}

/** Registers the afterEach hook of the calling test file; call it once, at the top level of the file. */
export function useStackTeardown(): StackTeardown {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
  });
  return {
    cleanup,
    async stack(options) {
      const s = await startLocalStack(options);
      cleanup.push(() => s.close());
      return s;
    },
    sidecar(env, label) {
      const p = startSidecar(env, ['run'], { label });
      cleanup.push(async () => {
        p.kill('SIGKILL');
        await p.exited;
      });
      return p;
    },
  };
}
