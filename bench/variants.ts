/**
 * Side-by-side measurements of start variants against the RGW stack, for deciding whether a change pays
 * (docs/benchmarks.md, round 3: each row of "what each change bought" gives its command):
 *
 *   node --experimental-strip-types bench/variants.ts '<json>' mem|cold [runs]
 *
 * `<json>` is a list of `{ "name", "args": [node args before the command], "env"?: {...} }`; `mem` starts
 * 3 `run` daemons per variant (lease 3600 s), waits for each first lease and `SETTLE` ms (8000), and
 * prints the median (min-max) RssAnon and RSS; `cold` times `once` per variant, `runs` interleaved rounds
 * after one warm-up round. `STSTEST_KEEP_RGW=1` keeps the Ceph stack up between calls.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isRgwUp, stopRgw } from '../test/stack/ceph-rgw.ts';
import { startLocalStack } from '../test/stack/local-stack.ts';
import { baseEnv } from './cold-start.ts';
import { memoryKiB } from './proc.ts';
import { timeInterleaved, type Variant } from './spawn-timing.ts';
import { spread } from './stats.ts';

interface Start {
  readonly name: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
}

const variants = JSON.parse(process.argv[2] ?? '[]') as Start[];
const mode = process.argv[3] ?? 'mem';
const runs = Number(process.argv[4] ?? 5);
const rgwWasUp = await isRgwUp();
const stack = await startLocalStack({ sts: 'ceph-rgw' });
const env = { ...baseEnv(), ...stack.env };

async function firstLease(child: ChildProcess, name: string): Promise<void> {
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  for (let t = 0; !out.includes('"lease.acquired"'); t++) {
    if (t > 600) throw new Error(`${name}: no lease in 30 s: ${out.slice(-2000)}`);
    await sleep(50);
  }
}

try {
  if (mode === 'cold') {
    const timed: Variant[] = variants.map((v) => ({
      name: v.name,
      command: process.execPath,
      args: [...v.args, 'once'],
      env: { ...env, ...v.env },
      before: async () => {
        await rm(stack.outputDir, { recursive: true, force: true });
        await mkdir(stack.outputDir, { recursive: true });
      },
    }));
    for (const [k, v] of await timeInterleaved(timed, runs, 1)) console.log(`${k}: ${spread(v, 0)} ms`);
  } else {
    for (const v of variants) {
      const children: ChildProcess[] = [];
      try {
        for (let i = 0; i < 3; i++) {
          const dir = path.join(stack.dir, `variant-${v.name.replace(/\W/g, '_')}-${i}`);
          await mkdir(dir, { recursive: true });
          const c = spawn(process.execPath, [...v.args, 'run'], {
            env: { ...env, ...v.env, STS_SIDECAR_OUTPUT_DIR: dir, STS_SIDECAR_TTL_SECONDS: '3600' },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          children.push(c);
          await firstLease(c, v.name);
        }
        await sleep(Number(process.env.SETTLE ?? 8000));
        const m = await Promise.all(children.map((c) => memoryKiB(c.pid!)));
        console.log(
          `${v.name}: RssAnon ${spread(m.map((x) => x.anon / 1024))} MB, RSS ${spread(m.map((x) => x.rss / 1024))} MB`,
        );
      } finally {
        for (const c of children) c.kill();
      }
    }
  }
} finally {
  await stack.close();
  if (!rgwWasUp && !process.env.STSTEST_KEEP_RGW) await stopRgw();
}
