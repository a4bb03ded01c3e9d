/** Wall time of short-lived processes, from spawn to exit, measured by this process. */
import { spawn } from 'node:child_process';

export interface Variant {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** Runs before each timed run (not timed), e.g. emptying the output directory. */
  readonly before?: () => Promise<void>;
  /** Checks each run's result (not timed); throws when the run did not do its job. */
  readonly verify?: () => Promise<void>;
}

export interface TimedRun {
  readonly ms: number;
  readonly code: number | null;
  readonly stderr: string;
}

export async function timeOnce(v: Variant): Promise<TimedRun> {
  await v.before?.();
  const start = process.hrtime.bigint();
  const child = spawn(v.command, v.args, { env: { ...v.env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    if (stderr.length < 4000) stderr += c;
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c) => resolve(c));
  });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (code !== 0) throw new Error(`${v.name} exited ${code}: ${stderr.slice(-1500)}`);
  await v.verify?.();
  return { ms, code, stderr };
}

/**
 * Times every variant `runs` times, interleaved (A B C A B C ...) so that slow drift of the machine
 * hits all of them alike; `warmup` untimed rounds first (page cache, RGW connection pools).
 */
export async function timeInterleaved(
  variants: readonly Variant[],
  runs: number,
  warmup = 2,
): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  for (let round = 0; round < warmup + runs; round++) {
    for (const v of variants) {
      const { ms } = await timeOnce(v);
      if (round >= warmup) out.get(v.name)!.push(ms);
    }
  }
  return out;
}
