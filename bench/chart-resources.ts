/**
 * The chart's default memory `resources` (helm/sts-sidecar/values.yaml) follow from this run's
 * measurements of the image's configuration, by the rule written next to them in values.yaml and
 * docs/benchmarks.md:
 *   requests.memory = the highest RSS of one refresh (SIGHUP of an idle daemon), rounded up to 8 Mi;
 *   limits.memory   = 1.25 x the highest RSS measured at all (refresh peaks and the 10,000-refresh
 *                     churn of the drift benchmark), rounded up to 16 Mi.
 * RSS, not RssAnon: the kubelet's working set counts the file pages the container touched too.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from '../test/support/sidecar-process.ts';
import type { DriftResult, RefreshPeak } from './daemon.ts';
import type { Row } from './report.ts';

const MI = 1024;
const roundUp = (kib: number, stepMi: number) => Math.ceil(kib / (stepMi * MI)) * stepMi;

/** The rule, in Mi. */
export function chartMemoryRule(
  refreshPeaksKiB: readonly number[],
  highestKiB: number,
): { requestMi: number; limitMi: number } {
  const refresh = Math.max(...refreshPeaksKiB);
  return {
    requestMi: roundUp(refresh, 8),
    limitMi: roundUp(1.25 * Math.max(refresh, highestKiB), 16),
  };
}

const parseMi = (v: unknown) => {
  const m = /^(\d+)Mi$/.exec(String(v));
  return m ? Number(m[1]) : Number.NaN;
};

export async function chartResourceRows(
  peaks: readonly RefreshPeak[],
  drift: DriftResult,
  rows: Row[],
  notes: string[],
): Promise<void> {
  const rule = chartMemoryRule(
    peaks.map((p) => p.rssKiB),
    drift.peakRssKiB,
  );
  const values = parse(
    await readFile(path.join(REPO_ROOT, 'helm', 'sts-sidecar', 'values.yaml'), 'utf8'),
  ) as {
    resources?: { requests?: { memory?: string }; limits?: { memory?: string } };
  };
  const request = parseMi(values.resources?.requests?.memory);
  const limit = parseMi(values.resources?.limits?.memory);
  rows.push({
    benchmark:
      'Chart default memory (helm/sts-sidecar/values.yaml) vs the rule: request = highest refresh RSS rounded up to 8 Mi, limit = 1.25x the highest RSS incl. churn rounded up to 16 Mi (image configuration)',
    measured: `requests ${request}Mi, limits ${limit}Mi`,
    baseline: `rule: ${rule.requestMi}Mi / ${rule.limitMi}Mi`,
    ratio: `refresh peak ${(Math.max(...peaks.map((p) => p.rssKiB)) / MI).toFixed(1)} MB, churn peak ${(drift.peakRssKiB / MI).toFixed(1)} MB`,
    goal: 'values = rule',
    met: request === rule.requestMi && limit === rule.limitMi,
  });
  notes.push(
    `Chart resources: the rule gives requests.memory ${rule.requestMi}Mi and limits.memory ${rule.limitMi}Mi from this run; values.yaml has ${request}Mi / ${limit}Mi.`,
  );
}
