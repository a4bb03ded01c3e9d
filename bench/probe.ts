/**
 * CPU of one kubelet-style probe: a GET on a fresh connection with `Connection: close` (kubelet's HTTP
 * prober never reuses connections), answered by the daemon's /readyz and /healthz and, in the same run,
 * by a bare Node HTTP server answering the same request with a body of the same size. CPU is read from
 * schedstat (ns, all threads) around blocks of probes, interleaved between the two servers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { baseEnv } from './cold-start.ts';
import { cpuNsAllThreads, wakeups } from './proc.ts';
import { median } from './stats.ts';

/** A bare Node HTTP server that answers every GET with a JSON body of `bodyBytes` bytes. */
export const BARE_SERVER = `
const body = JSON.stringify({ ok: true, pad: 'x'.repeat(Math.max(0, Number(process.env.BODY_BYTES) - 20)) }) + '\\n';
const s = require('node:http').createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(body);
});
s.listen(0, '127.0.0.1', () => process.stdout.write(String(s.address().port) + '\\n'));
`;

export function probe(port: number, path: string): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      {
        host: '127.0.0.1',
        port,
        path,
        agent: false,
        headers: { connection: 'close', 'user-agent': 'kube-probe/1.33' },
      },
      (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error(`probe ${path} timed out`)));
    req.on('error', reject);
  });
}

export async function startBareServer(bodyBytes: number): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['-e', BARE_SERVER], {
    env: { ...baseEnv(), BODY_BYTES: String(bodyBytes) },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').once('data', (d: string) => resolve(Number(d.trim())));
    child.once('exit', (c) => reject(new Error(`bare server exited ${c}`)));
  });
  return { child, port };
}

export interface ProbeTarget {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  readonly path: string;
}

export interface ProbeResult {
  /** CPU per probe in ms, one figure per block, by target name. */
  readonly perProbeMs: Map<string, number[]>;
  /** CPU of the very first probe after start-up (lazy compilation included), by target name. */
  readonly firstProbeMs: Map<string, number>;
  /** Wake-ups of the process in the 10 s after its last probe block, by target name. */
  readonly wakeupsAfter: Map<string, number>;
  /**
   * Paced like a kubelet (one probe per target every `paceMs`), CPU over the whole stretch plus a 10 s
   * tail divided by the probes: what a probe really costs, including the GC work it leaves behind.
   */
  readonly pacedPerProbeMs: Map<string, number>;
  readonly pacedWakeupsPerProbe: Map<string, number>;
  readonly paced: { probes: number; paceMs: number };
  readonly probesPerBlock: number;
  readonly blocks: number;
}

async function block(t: ProbeTarget, n: number): Promise<number> {
  const before = await cpuNsAllThreads(t.pid);
  for (let i = 0; i < n; i++) {
    const r = await probe(t.port, t.path);
    if (r.status !== 200) throw new Error(`${t.name}: ${t.path} answered ${r.status}`);
  }
  // Let the last connection's close be handled before reading the CPU.
  await sleep(50);
  return (await cpuNsAllThreads(t.pid)) - before;
}

/** Measures every target: the first probe, then `blocks` interleaved blocks of `perBlock` probes. */
export async function measureProbes(
  targets: readonly ProbeTarget[],
  blocks: number,
  perBlock: number,
  paced: { probes: number; paceMs: number } = { probes: 30, paceMs: 1000 },
): Promise<ProbeResult> {
  const perProbeMs = new Map<string, number[]>(targets.map((t) => [t.name, []]));
  const firstProbeMs = new Map<string, number>();
  const wakeupsAfter = new Map<string, number>();
  for (const t of targets) firstProbeMs.set(t.name, (await block(t, 1)) / 1e6);
  // Untimed warm-up: steady state is what a pod pays every period.
  for (const t of targets) await block(t, 20);
  for (let b = 0; b < blocks; b++) {
    for (const t of targets) perProbeMs.get(t.name)!.push((await block(t, perBlock)) / 1e6 / perBlock);
  }
  const w0 = await Promise.all(targets.map((t) => wakeups(t.pid)));
  await sleep(10_000);
  const w1 = await Promise.all(targets.map((t) => wakeups(t.pid)));
  targets.forEach((t, i) => wakeupsAfter.set(t.name, w1[i]! - w0[i]!));
  // Let the burst's aftermath die down, then probe at a kubelet's pace.
  await sleep(15_000);
  const c0 = await Promise.all(targets.map((t) => cpuNsAllThreads(t.pid)));
  const k0 = await Promise.all(targets.map((t) => wakeups(t.pid)));
  for (let i = 0; i < paced.probes; i++) {
    for (const t of targets) await probe(t.port, t.path);
    await sleep(paced.paceMs);
  }
  await sleep(10_000);
  const c1 = await Promise.all(targets.map((t) => cpuNsAllThreads(t.pid)));
  const k1 = await Promise.all(targets.map((t) => wakeups(t.pid)));
  const pacedPerProbeMs = new Map<string, number>();
  const pacedWakeupsPerProbe = new Map<string, number>();
  targets.forEach((t, i) => {
    // Targets that share a process (readyz and healthz of one daemon) share its CPU.
    const probes = paced.probes * targets.filter((o) => o.pid === t.pid).length;
    pacedPerProbeMs.set(t.name, (c1[i]! - c0[i]!) / 1e6 / probes);
    pacedWakeupsPerProbe.set(t.name, (k1[i]! - k0[i]!) / probes);
  });
  return {
    perProbeMs,
    firstProbeMs,
    wakeupsAfter,
    pacedPerProbeMs,
    pacedWakeupsPerProbe,
    paced,
    probesPerBlock: perBlock,
    blocks,
  };
}

export const medianOf = (r: ProbeResult, name: string): number => median(r.perProbeMs.get(name) ?? []);
