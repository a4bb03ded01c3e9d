// The metric names the docs promise, read from the docs themselves, so that a test holding them against a
// live /metrics fails when either side drifts.
import { readFileSync } from 'node:fs';
import path from 'node:path';

const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
const METRIC = /`(sts_sidecar_[a-z_]+)(?:\{[^}`]*\})?`/g;
const DURATION = 'sts_sidecar_request_duration_seconds';

export interface DocumentedMetrics {
  /** Every sts_sidecar_* name README's /metrics bullet and docs/identity.md mention. */
  readonly names: readonly string[];
  /** The `target` values README lists for sts_sidecar_request_duration_seconds, plus identity.md's. */
  readonly targets: readonly string[];
}

export function documentedMetrics(): DocumentedMetrics {
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const identity = readFileSync(path.join(REPO_ROOT, 'docs/identity.md'), 'utf8');
  const start = readme.indexOf('- `GET /metrics`');
  if (start < 0) throw new Error('README.md: no "- `GET /metrics`" bullet');
  const end = readme.indexOf('\n\n', start);
  const bullet = readme.slice(start, end < 0 ? undefined : end);
  const targetList = new RegExp(`\`${DURATION}\\{target,outcome\\}\`\\s*\\(([^)]*)\\)`).exec(bullet);
  if (!targetList) throw new Error(`README.md: the /metrics bullet lists no targets for ${DURATION}`);
  const names = new Set([...bullet.matchAll(METRIC), ...identity.matchAll(METRIC)].map((m) => m[1]!));
  const targets = new Set(targetList[1]!.split(',').map((t) => t.trim()));
  for (const m of identity.matchAll(/target="([a-z_]+)"/g)) targets.add(m[1]!);
  return { names: [...names].sort(), targets: [...targets].sort() };
}

/** What of the documented metrics a Prometheus text exposition lacks (empty when it has them all). */
export function missingMetrics(exposition: string, documented: DocumentedMetrics): string[] {
  const missing = documented.names.filter((n) => !new RegExp(`^# TYPE ${n} `, 'm').test(exposition));
  for (const t of documented.targets) {
    if (!new RegExp(`^${DURATION}_count\\{[^}]*target="${t}"`, 'm').test(exposition))
      missing.push(`${DURATION}{target="${t}"}`);
  }
  return missing;
}

/**
 * The fields README's log table promises for a lease event, with "audit fields" spelled out from the paragraph
 * under the table; `oneShot` drops what the table marks "(not in `once`)", `identity` keeps principal_type and
 * assurance.
 */
export function documentedEventFields(event: string, o: { oneShot: boolean; identity: boolean }): string[] {
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const row = readme.split('\n').find((l) => l.startsWith(`| \`${event}\``));
  if (!row) throw new Error(`README.md: no log table row for ${event}`);
  const audit = /The audit fields of the [^:]*:([^.]*)\./s.exec(readme);
  if (!audit) throw new Error('README.md: no paragraph listing the audit fields');
  const auditFields = [...audit[1]!.matchAll(/\b([a-z]+(?:_[a-z]+)*)\b(?:\s*\([^)]*\))?/g)]
    .map((m) => m[1]!)
    .filter((w) => !['and', 'with', 'the', 'identity', 'exchange', 'on', 'also'].includes(w));
  const fields = row
    .split('|')[4]!
    .split(',')
    .map((f) => f.trim())
    .filter((f) => !(o.oneShot && f.endsWith('(not in `once`)')))
    .map((f) => f.replace(/\s*\(.*\)$/, ''))
    .flatMap((f) => (f === 'audit fields' ? auditFields : [f]))
    .filter((f) => o.identity || !['principal_type', 'assurance'].includes(f));
  return [...new Set(fields)].sort();
}
