import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load.ts';
import { createSecretSink } from './secret-sink-wiring.ts';

// A well-formed PEM block is all the wiring checks; the TLS handshake is tested against a real API server.
const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

describe('the Secret sink wiring (CA, namespace and token files)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sts-wiring-'));
    writeFileSync(join(dir, 'ca.crt'), PEM);
    writeFileSync(join(dir, 'token'), 'x');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const wire = (env: Record<string, string> = {}) => {
    const c = loadConfig({
      STS_SIDECAR_TENANT: 'team-a',
      STS_SIDECAR_BUCKET: 'artifacts',
      STS_SIDECAR_FLEX_AUTH_URL: 'https://flex-auth.example/v1/decisions',
      STS_SIDECAR_ROLE_ARN: 'arn:aws:iam::123456789012:role/app',
      STS_SIDECAR_SINK: 'secret',
      STS_SIDECAR_SECRET_NAME: 's',
      STS_SIDECAR_KUBE_TOKEN_FILE: join(dir, 'token'),
      STS_SIDECAR_KUBE_CA_FILE: join(dir, 'ca.crt'),
      ...env,
    });
    return createSecretSink(c.secret!, { readTextFile: (p) => readFileSync(p, 'utf8'), timeoutMs: 1000 });
  };

  it('takes the namespace from the file next to the token when unset', () => {
    writeFileSync(join(dir, 'namespace'), 'team-a\n');
    expect(wire().target).toBe('team-a/s');
  });

  it('a namespace file holding no DNS label is refused, naming the variable and that file', () => {
    writeFileSync(join(dir, 'namespace'), 'team.a');
    expect(() => wire()).toThrow(
      `STS_SIDECAR_SECRET_NAMESPACE: unset, and ${join(dir, 'namespace')} (next to STS_SIDECAR_KUBE_TOKEN_FILE) holds no namespace name`,
    );
  });

  it('a configured namespace wins and no namespace file is read', () => {
    expect(wire({ STS_SIDECAR_SECRET_NAMESPACE: 'other' }).target).toBe('other/s');
  });

  it('a missing namespace file or a CA file without PEM names the variable and the file', () => {
    expect(() => wire()).toThrow(
      `STS_SIDECAR_SECRET_NAMESPACE: cannot read the pod namespace file ${join(dir, 'namespace')} (ENOENT)`,
    );
    writeFileSync(join(dir, 'ca.crt'), 'not a certificate');
    expect(() => wire({ STS_SIDECAR_SECRET_NAMESPACE: 'a' })).toThrow(
      `STS_SIDECAR_KUBE_CA_FILE: ${join(dir, 'ca.crt')} holds no PEM certificate`,
    );
  });
});
