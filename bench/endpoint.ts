/**
 * Issue 10: the credentials endpoint's latency (many GETs over one keep-alive connection against a running
 * sidecar, median and p99) against a bare Node HTTP server answering a JSON body of the same size on the
 * same client, and the sidecar's idle RSS with the endpoint on against the same sidecar with it off.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LocalStack } from '../test/stack/local-stack.ts';
import { startSidecar, type SidecarProcess } from '../test/support/sidecar-process.ts';
import { rssKiB } from './proc.ts';
import { median, quantile } from './stats.ts';

export interface EndpointResult {
  readonly requests: number;
  readonly sidecarMs: number[];
  readonly bareMs: number[];
  /** Idle RSS after the GET burst and a settle time, endpoint on vs off, KiB. */
  readonly rssOnKiB: number[];
  readonly rssOffKiB: number[];
}

/** GETs `url` `n` times in sequence over one keep-alive socket; returns each latency in ms. */
async function burst(url: string, token: string | undefined, n: number): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const out: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      await new Promise<void>((resolve, reject) => {
        const req = http.get(url, { agent, headers: token ? { authorization: token } : {} }, (res) => {
          if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode} from ${url}`));
          res.resume();
          res.on('end', resolve);
        });
        req.on('error', reject);
      });
      out.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  } finally {
    agent.destroy();
  }
  return out;
}

const BARE_SERVER = `const body=JSON.stringify({AccessKeyId:'A'.repeat(20),SecretAccessKey:'S'.repeat(40),Token:'T'.repeat(430),Expiration:'2030-01-01T00:00:00Z'});
const s=require('http').createServer((q,r)=>{r.writeHead(200,{'content-type':'application/json','cache-control':'no-store'});r.end(body)});
s.listen(0,'127.0.0.1',()=>process.stdout.write(s.address().port+'\\n'));`;

async function bareServer(): Promise<{ url: string; close(): void }> {
  const child = spawn(process.execPath, ['-e', BARE_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve) =>
    child.stdout.setEncoding('utf8').once('data', (d: string) => resolve(d.trim())),
  );
  return { url: `http://127.0.0.1:${port}/v1/credentials`, close: () => child.kill('SIGKILL') };
}

async function sidecar(
  stack: LocalStack,
  on: boolean,
  nodeArgs: string[],
  label: string,
): Promise<{ p: SidecarProcess; url: string; token: string }> {
  const tokenFile = path.join(stack.dir, `bench-endpoint-token-${label}`);
  const outputDir = path.join(stack.dir, `bench-endpoint-out-${label}`);
  await mkdir(outputDir, { recursive: true });
  const p = startSidecar(
    {
      ...stack.env,
      STS_SIDECAR_OUTPUT_DIR: outputDir,
      ...(on
        ? {
            STS_SIDECAR_CREDENTIALS_ENDPOINT: '127.0.0.1:0',
            STS_SIDECAR_CREDENTIALS_ENDPOINT_TOKEN_FILE: tokenFile,
          }
        : {}),
      STS_SIDECAR_LISTEN: '127.0.0.1:0',
    },
    ['run'],
    { label: `bench-endpoint-${label}`, nodeArgs },
  );
  const started = await p.waitForEvent('sidecar.started', 20_000);
  await p.waitForEvent('lease.acquired', 20_000);
  return {
    p,
    url: `http://${String(started.credentials_endpoint)}/v1/credentials`,
    token: on ? await readFile(tokenFile, 'utf8') : '',
  };
}

/**
 * `rounds` rounds, each: a sidecar with the endpoint on and one with it off, started together; `requests`
 * GETs against the endpoint and the bare server (interleaved halves); both sidecars left idle for `settleMs`,
 * then their RSS read.
 */
export async function measureEndpoint(
  stack: LocalStack,
  options: { rounds: number; requests: number; settleMs: number; nodeArgs: string[] },
): Promise<EndpointResult> {
  const bare = await bareServer();
  const result = {
    requests: options.requests,
    sidecarMs: [] as number[],
    bareMs: [] as number[],
    rssOnKiB: [] as number[],
    rssOffKiB: [] as number[],
  };
  try {
    for (let round = 0; round < options.rounds; round++) {
      const [on, off] = await Promise.all([
        sidecar(stack, true, options.nodeArgs, `on-${round}`),
        sidecar(stack, false, options.nodeArgs, `off-${round}`),
      ]);
      try {
        await burst(on.url, on.token, 200);
        await burst(bare.url, undefined, 200);
        const half = Math.floor(options.requests / 2);
        for (let i = 0; i < 2; i++) {
          result.sidecarMs.push(...(await burst(on.url, on.token, half)));
          result.bareMs.push(...(await burst(bare.url, undefined, half)));
        }
        await sleep(options.settleMs);
        result.rssOnKiB.push(await rssKiB(on.p.child.pid!));
        result.rssOffKiB.push(await rssKiB(off.p.child.pid!));
      } finally {
        for (const s of [on, off]) {
          s.p.kill('SIGTERM');
          await s.p.exited;
        }
      }
    }
  } finally {
    bare.close();
  }
  return result;
}

export function summarizeEndpoint(r: EndpointResult) {
  return {
    sidecarMedianMs: median(r.sidecarMs),
    sidecarP99Ms: quantile(r.sidecarMs, 0.99),
    bareMedianMs: median(r.bareMs),
    bareP99Ms: quantile(r.bareMs, 0.99),
    rssOnKiB: median(r.rssOnKiB),
    rssOffKiB: median(r.rssOffKiB),
  };
}
