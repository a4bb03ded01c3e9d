import { describe, expect, it } from 'vitest';
import { fanOut, type LeaseEvent } from './lease-events.ts';

describe('fanOut', () => {
  it('hands each event to every subscriber, in order', () => {
    const seen: string[] = [];
    const report = fanOut(
      (e) => seen.push(`a:${e.event}`),
      (e) => seen.push(`b:${e.event}`),
    );
    const event: LeaseEvent = { event: 'loop.sleep', at_ms: 1, until_ms: 2 };
    report(event);
    expect(seen).toEqual(['a:loop.sleep', 'b:loop.sleep']);
  });
});
