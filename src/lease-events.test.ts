import { describe, expect, it } from 'vitest';
import { fanOut, fanOutIsolated, publicFields, type LeaseEvent } from './lease-events.ts';

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

  it('a throwing subscriber keeps no other from the event; its error is reported after all ran', () => {
    const seen: string[] = [];
    const errors: [string, number][] = [];
    const report = fanOutIsolated(
      (err, i) => errors.push([(err as Error).message, i]),
      (e) => seen.push(`a:${e.event}`),
      () => {
        throw new Error('broken');
      },
      (e) => seen.push(`c:${e.event}`),
    );
    report({ event: 'loop.sleep', at_ms: 1, until_ms: 2 });
    expect(seen).toEqual(['a:loop.sleep', 'c:loop.sleep']);
    expect(errors).toEqual([['broken', 1]]);
    const plain = fanOut(
      () => {
        throw new Error('boom');
      },
      (e) => seen.push(`d:${e.event}`),
    );
    expect(() => plain({ event: 'loop.sleep', at_ms: 1, until_ms: 2 })).toThrow('boom');
    expect(seen).toContain('d:loop.sleep');
  });

  it('publicFields drops the internal millisecond expiry', () => {
    const fields = publicFields({
      event: 'lease.expired',
      tenant: 't',
      expiration: 'x',
      access_key_id: undefined,
      expires_at_ms: 5,
    } as LeaseEvent);
    expect(fields).not.toHaveProperty('expires_at_ms');
    expect(fields).toMatchObject({ event: 'lease.expired', tenant: 't' });
  });
});
