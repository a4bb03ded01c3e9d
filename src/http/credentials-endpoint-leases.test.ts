import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { CredentialSet } from '../domain/credentials.ts';
import { startCredentialsEndpoint, type CredentialsEndpoint } from './credentials-endpoint.ts';

const TOKEN = 'test-endpoint-token-leases-0123456789';
const NOW = Date.parse('2026-01-01T00:00:00Z');

const sets: Record<string, CredentialSet> = {
  artifacts: {
    accessKeyId: 'AKIDART',
    secretAccessKey: 'sa',
    sessionToken: 'ta',
    expiresAtMs: NOW + 3600_000,
  },
  datasets: {
    accessKeyId: 'AKIDDATA',
    secretAccessKey: 'sd',
    sessionToken: 'td',
    expiresAtMs: NOW + 3600_000,
  },
};

function get(port: number, path: string): Promise<{ status: number; body: Record<string, string> }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, headers: { authorization: TOKEN }, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) }));
      })
      .on('error', reject);
  });
}

const open: CredentialsEndpoint[] = [];
afterEach(async () => {
  for (const e of open.splice(0)) await e.close();
});

describe('credentials endpoint with named leases', () => {
  it('serves each lease on /v1/credentials/<name>; the plain path and unknown names are 404', async () => {
    const asked: (string | undefined)[] = [];
    const endpoint = await startCredentialsEndpoint({
      host: '127.0.0.1',
      port: 0,
      token: TOKEN,
      leases: ['artifacts', 'datasets'],
      current: (_now, lease) => {
        asked.push(lease);
        return lease === undefined ? undefined : sets[lease];
      },
      now: () => NOW,
      onRefused: () => undefined,
    });
    open.push(endpoint);
    const a = await get(endpoint.port, '/v1/credentials/artifacts');
    const d = await get(endpoint.port, '/v1/credentials/datasets?x=1');
    expect(a).toMatchObject({ status: 200, body: { AccessKeyId: 'AKIDART', Token: 'ta' } });
    expect(d).toMatchObject({ status: 200, body: { AccessKeyId: 'AKIDDATA', Token: 'td' } });
    for (const path of [
      '/v1/credentials',
      '/v1/credentials/',
      '/v1/credentials/other',
      '/v1/credentials/artifacts/x',
    ]) {
      const r = await get(endpoint.port, path);
      expect(r.status, path).toBe(404);
      expect(r.body.message, path).toMatch(/\/v1\/credentials\/<lease>/);
    }
    expect(asked).toEqual(['artifacts', 'datasets']);
  });

  it('a single lease is served on the plain path only', async () => {
    const endpoint = await startCredentialsEndpoint({
      host: '127.0.0.1',
      port: 0,
      token: TOKEN,
      current: () => sets.artifacts,
      now: () => NOW,
      onRefused: () => undefined,
    });
    open.push(endpoint);
    expect((await get(endpoint.port, '/v1/credentials')).status).toBe(200);
    const named = await get(endpoint.port, '/v1/credentials/artifacts');
    expect(named).toEqual({
      status: 404,
      body: { code: 'ERR_ENDPOINT_NOT_FOUND', message: 'only /v1/credentials is served' },
    });
  });
});
