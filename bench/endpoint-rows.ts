/** The credentials-endpoint rows of `npm run bench` (issue 10), kept apart from run.ts's own benchmarks. */
import { startLocalStack } from '../test/stack/local-stack.ts';
import type { Row } from './report.ts';
import { measureEndpoint, summarizeEndpoint } from './endpoint.ts';
import { spread } from './stats.ts';

export async function endpointRows(
  rows: Row[],
  notes: string[],
  options: { quick: boolean; log: (msg: string) => void; nodeArgs: string[] },
): Promise<void> {
  const P = options.quick
    ? { rounds: 1, requests: 2000, settleMs: 5000 }
    : { rounds: 3, requests: 10_000, settleMs: 20_000 };
  options.log(`credentials endpoint: ${P.rounds} rounds of ${P.requests} keep-alive GETs, then idle RSS`);
  const stack = await startLocalStack({ sts: 'stand-in' });
  let r;
  try {
    r = await measureEndpoint(stack, { ...P, nodeArgs: options.nodeArgs });
  } finally {
    await stack.close();
  }
  const s = summarizeEndpoint(r);
  const ms = (v: number) => `${v.toFixed(3)} ms`;
  const mb = (kib: number) => `${(kib / 1024).toFixed(1)} MB`;
  rows.push(
    {
      benchmark: 'Credentials endpoint GET latency, median (keep-alive) vs bare Node HTTP server',
      measured: ms(s.sidecarMedianMs),
      baseline: ms(s.bareMedianMs),
      ratio: `${(s.sidecarMedianMs / s.bareMedianMs).toFixed(2)}x`,
      goal: '-',
      met: undefined,
    },
    {
      benchmark: 'Credentials endpoint GET latency, p99 (keep-alive) vs bare Node HTTP server',
      measured: ms(s.sidecarP99Ms),
      baseline: ms(s.bareP99Ms),
      ratio: `${(s.sidecarP99Ms / s.bareP99Ms).toFixed(2)}x`,
      goal: '-',
      met: undefined,
    },
    {
      benchmark: 'Idle RSS of `run` with the credentials endpoint on vs off',
      measured: mb(s.rssOnKiB),
      baseline: mb(s.rssOffKiB),
      ratio: `${(s.rssOnKiB / s.rssOffKiB).toFixed(2)}x`,
      goal: '-',
      met: undefined,
    },
  );
  notes.push(
    `Credentials endpoint: ${P.rounds} round(s), each a sidecar with the endpoint on and one with it off (image Node flags), ` +
      `${P.requests} sequential GETs of /v1/credentials over one keep-alive socket against the sidecar and as many against a bare ` +
      `Node server answering a same-size JSON body (interleaved halves, after 200 warm-up GETs each); RSS read after ` +
      `${P.settleMs / 1000} s idle. RSS per round, endpoint on: ${spread(r.rssOnKiB.map((k) => k / 1024))} MB; off: ` +
      `${spread(r.rssOffKiB.map((k) => k / 1024))} MB.`,
  );
}
