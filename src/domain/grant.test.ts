import { describe, expect, it } from 'vitest';
import { narrowGrant, type AllowAnswer } from './grant.ts';

const limits = { minSeconds: 900, maxSeconds: 3600 };
const request = { actions: ['list', 'read'] as const, ttlSeconds: 3600 };
const allow = (a: Partial<AllowAnswer> = {}): AllowAnswer => ({
  decisionId: 'd1',
  ttlSeconds: undefined,
  actions: undefined,
  obligations: undefined,
  ...a,
});

describe('narrowGrant', () => {
  it('an allow without details grants the request as asked', () => {
    expect(narrowGrant(request, allow(), limits)).toEqual({
      actions: ['list', 'read'],
      ttlSeconds: 3600,
      steppedDown: false,
    });
  });

  it('takes the lower TTL and the intersection of actions', () => {
    expect(narrowGrant(request, allow({ ttlSeconds: 1200, actions: ['read'] }), limits)).toEqual({
      actions: ['read'],
      ttlSeconds: 1200,
      steppedDown: false,
    });
  });

  it('never widens: a grant wider than the request is narrowed to it', () => {
    const g = narrowGrant(
      request,
      allow({ ttlSeconds: 43200, actions: ['read', 'list', 'write', 'delete'] }),
      limits,
    );
    expect(g).toEqual({ actions: ['list', 'read'], ttlSeconds: 3600, steppedDown: false });
  });

  it('honours a max_ttl_seconds obligation', () => {
    expect(narrowGrant(request, allow({ obligations: { max_ttl_seconds: 1000 } }), limits).ttlSeconds).toBe(
      1000,
    );
  });

  it('fails closed on an obligation it cannot enforce', () => {
    expect(() => narrowGrant(request, allow({ obligations: { watermark: true } }), limits)).toThrow(
      expect.objectContaining({ code: 'ERR_POLICY_OBLIGATION_UNSUPPORTED' }),
    );
  });

  it('refuses when none of the asked actions is granted', () => {
    expect(() => narrowGrant(request, allow({ actions: ['write'] }), limits)).toThrow(
      expect.objectContaining({ code: 'ERR_NOTHING_GRANTED' }),
    );
  });

  it('refuses a TTL below the STS minimum instead of asking for more than allowed', () => {
    expect(() => narrowGrant(request, allow({ ttlSeconds: 600 }), limits)).toThrow(
      expect.objectContaining({ code: 'ERR_TTL_BELOW_STS_MINIMUM' }),
    );
  });

  it('steps a TTL above the STS maximum down to it', () => {
    expect(narrowGrant({ ...request, ttlSeconds: 7200 }, allow(), limits)).toEqual({
      actions: ['list', 'read'],
      ttlSeconds: 3600,
      steppedDown: true,
    });
  });
});
