import { describe, expect, it } from 'vitest';
import { interrupted, startParts, subscribersOf, type Part } from './run-group.ts';

/** A part that records its start, run and close in `log`. */
function recorded(
  log: string[],
  name: string,
  o: { failStart?: boolean; runs?: 'until-interrupt' | 'ends' } = {},
): Part {
  return {
    name,
    start: async () => {
      if (o.failStart) throw new Error(`${name} cannot start`);
      log.push(`start ${name}`);
    },
    ...(o.runs === undefined
      ? {}
      : {
          run: async (interrupt: AbortSignal) => {
            log.push(`run ${name}`);
            if (o.runs === 'until-interrupt') await interrupted(interrupt);
            log.push(`ran ${name}`);
          },
        }),
    close: async () => {
      log.push(`close ${name}`);
    },
  };
}

const noCloseError = (part: string, err: unknown) => {
  throw new Error(`${part} failed to close: ${String(err)}`);
};

describe('startParts', () => {
  it('starts in list order, and closes in reverse once every run returned after the signal aborted', async () => {
    const log: string[] = [];
    const stop = new AbortController();
    const group = await startParts(
      [recorded(log, 'a'), recorded(log, 'b', { runs: 'until-interrupt' }), recorded(log, 'c')],
      stop.signal,
      noCloseError,
    );
    expect(log).toEqual(['start a', 'start b', 'start c', 'run b']);
    stop.abort();
    await group.done;
    expect(log.slice(4)).toEqual(['ran b', 'close c', 'close b', 'close a']);
  });

  it('interrupts every part when one run ends (oklog/run)', async () => {
    const log: string[] = [];
    const group = await startParts(
      [recorded(log, 'server', { runs: 'until-interrupt' }), recorded(log, 'loop', { runs: 'ends' })],
      new AbortController().signal,
      noCloseError,
    );
    await group.done;
    expect(log).toEqual([
      'start server',
      'start loop',
      'run server',
      'run loop',
      'ran loop',
      'ran server',
      'close loop',
      'close server',
    ]);
  });

  it('rejects done with a run error, after closing everything', async () => {
    const log: string[] = [];
    const failing: Part = { name: 'loop', run: () => Promise.reject(new Error('loop broke')) };
    const group = await startParts(
      [recorded(log, 'a', { runs: 'until-interrupt' }), failing],
      new AbortController().signal,
      noCloseError,
    );
    await expect(group.done).rejects.toThrow('loop broke');
    expect(log).toEqual(['start a', 'run a', 'ran a', 'close a']);
  });

  it('a failed start closes what had started, in reverse, and runs nothing', async () => {
    const log: string[] = [];
    await expect(
      startParts(
        [
          recorded(log, 'a', { runs: 'ends' }),
          recorded(log, 'b'),
          recorded(log, 'c', { failStart: true }),
          recorded(log, 'd'),
        ],
        new AbortController().signal,
        noCloseError,
      ),
    ).rejects.toThrow('c cannot start');
    expect(log).toEqual(['start a', 'start b', 'close b', 'close a']);
  });

  it('a part that fails to close is reported and the others still close', async () => {
    const log: string[] = [];
    const errors: string[] = [];
    const broken: Part = { name: 'broken', close: () => Promise.reject(new Error('stuck')) };
    const group = await startParts(
      [recorded(log, 'a'), broken, recorded(log, 'b', { runs: 'ends' })],
      new AbortController().signal,
      (part, err) => errors.push(`${part}: ${(err as Error).message}`),
    );
    await group.done;
    expect(errors).toEqual(['broken: stuck']);
    expect(log.slice(-2)).toEqual(['close b', 'close a']);
  });
});

describe('subscribersOf', () => {
  it("hands each event to the parts' subscribers in list order, past one that throws", () => {
    const seen: string[] = [];
    const failed: number[] = [];
    const report = subscribersOf(
      [
        { name: 'first', subscriber: (e) => void seen.push(`first ${e.event}`) },
        { name: 'no subscriber' },
        {
          name: 'broken',
          subscriber: () => {
            throw new Error('broken');
          },
        },
        { name: 'last', subscriber: (e) => void seen.push(`last ${e.event}`) },
      ],
      (_err, index) => failed.push(index),
    );
    report({ event: 'loop.sleep', at_ms: 0, until_ms: 1 });
    expect(seen).toEqual(['first loop.sleep', 'last loop.sleep']);
    expect(failed).toEqual([1]);
  });
});
