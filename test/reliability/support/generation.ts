/**
 * Synthetic credential sets whose every file carries its generation number, so a reader can tell a torn
 * file (content that is no generation's exact value) from a mixed set (files of different generations).
 * Shared by the writer/reader child processes and the tests; no vitest import here.
 */
import { createHash } from 'node:crypto';
import type { CredentialSet } from '../../../src/domain/credentials.ts';
import {
  CREDENTIAL_FILES,
  renderCredentialFiles,
  type CredentialFile,
} from '../../../src/adapters/credential-dir.ts';

/** Expirations are BASE + gen seconds, so the `expiration` file is generation-specific too. */
const BASE_MS = Date.UTC(2030, 0, 1);

/** Deterministic set for generation `gen`. The session token is ~2 KiB so a torn write would show. */
export function generationSet(gen: number): CredentialSet {
  const digest = createHash('sha256').update(`generation:${gen}`).digest('hex');
  return {
    accessKeyId: `AKIAGEN${String(gen).padStart(9, '0')}`,
    secretAccessKey: `sk-${gen}-${digest}`,
    sessionToken: `st-${gen}-${digest.repeat(32)}`,
    expiresAtMs: BASE_MS + gen * 1000,
  };
}

export function generationFiles(gen: number): Record<CredentialFile, string> {
  return renderCredentialFiles(generationSet(gen));
}

const GEN_FROM_FILE: Record<CredentialFile, RegExp> = {
  'access-key': /^AKIAGEN(\d{9})$/,
  'secret-key': /^sk-(\d+)-/,
  'session-token': /^st-(\d+)-/,
  expiration: /^\d{4}-/,
  'credentials.json': /"AccessKeyId":"AKIAGEN(\d{9})"/,
};

/**
 * The generation a file's content belongs to, or 'torn' when the content is not exactly that
 * generation's value (partial, empty, or garbage).
 */
export function classifyFile(name: CredentialFile, content: string): number | 'torn' {
  let gen: number;
  if (name === 'expiration') {
    const ms = Date.parse(content);
    if (!Number.isFinite(ms)) return 'torn';
    gen = Math.round((ms - BASE_MS) / 1000);
  } else {
    const m = GEN_FROM_FILE[name].exec(content);
    if (!m?.[1]) return 'torn';
    gen = Number(m[1]);
  }
  return gen >= 0 && generationFiles(gen)[name] === content ? gen : 'torn';
}

/** Files read as one set: the generation they all belong to, 'torn' if any is, else 'mixed'. */
export function classifySet(
  files: readonly (readonly [CredentialFile, string])[],
): number | 'torn' | 'mixed' {
  const parts = files.map(([name, content]) => classifyFile(name, content));
  if (parts.includes('torn')) return 'torn';
  if (new Set(parts).size !== 1) return 'mixed';
  return parts[0] as number;
}

/** A whole `credentials.json` read alone: complete and self-consistent? */
export function classifyCredentialsJson(content: string): number | 'torn' | 'mixed' {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(content) as Record<string, unknown>;
  } catch {
    return 'torn';
  }
  const gen = classifySet([
    ['access-key', String(doc.AccessKeyId)],
    ['secret-key', String(doc.SecretAccessKey)],
    ['session-token', String(doc.SessionToken)],
    ['expiration', String(doc.Expiration)],
  ]);
  if (typeof gen !== 'number') return gen;
  return generationFiles(gen)['credentials.json'] === content ? gen : 'torn';
}

export { CREDENTIAL_FILES };
export type { CredentialFile };
