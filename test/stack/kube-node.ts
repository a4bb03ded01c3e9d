/**
 * TypeScript side of the node stack (test/stack/kube-node.sh): containerd and a kubelet, controller-manager
 * and scheduler in their own mount namespace, registered with the kube-apiserver stack. Start/stop it,
 * import images, and read what the kubelet keeps on the node: container logs (CRI format under
 * /var/log/pods, seen through the namespace holder's /proc/<pid>/root) and container cgroups.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KUBE_VERSION, kubeUsable, onPath } from './kube.ts';

const here = dirname(fileURLToPath(import.meta.url));
const SCRIPT = join(here, 'kube-node.sh');
const REPO_ROOT = resolve(here, '..', '..');
export const NODE_STACK_DIR = process.env.KUBE_NODE_STACK_DIR ?? join(REPO_ROOT, '.stack', 'kube-node');

export interface NodeStack {
  readonly nodeName: string;
  /** The mount-namespace holder: /proc/<holderPid>/root is the node's view of the file system. */
  readonly holderPid: number;
  /** The kubelet's cgroupRoot, e.g. /sts-node-1a2b3c4d (in each cgroup v1 hierarchy). */
  readonly cgroupRoot: string;
  readonly containerdSocket: string;
  readonly logDir: string;
}

function kubeBinary(name: string): string {
  const root = process.env.STS_CACHE_DIR ?? join(homedir(), '.cache', 'sts-sidecar');
  return join(root, `kube-${KUBE_VERSION}`, name);
}

/** Whether the node can run here, with a one-line reason when it cannot. */
export function nodeUsable(): { ok: true } | { ok: false; reason: string } {
  const kube = kubeUsable();
  if ('reason' in kube) return kube;
  if (process.getuid?.() !== 0) return { ok: false, reason: 'the node stack needs root (mounts, cgroups)' };
  for (const bin of ['containerd', 'runc', 'ctr', 'unshare', 'nsenter']) {
    if (!onPath(bin))
      return { ok: false, reason: `${bin} not installed; run test/stack/kube-node.sh install` };
  }
  for (const bin of ['kubelet', 'kube-controller-manager', 'kube-scheduler', 'pause']) {
    try {
      accessSync(kubeBinary(bin), constants.X_OK);
    } catch {
      return { ok: false, reason: `${bin} not built; run test/stack/kube-node.sh install` };
    }
  }
  return { ok: true };
}

const usable = nodeUsable();
/** Why the real-pod tests cannot run here, or undefined when they can. */
export const nodeSkipReason: string | undefined = 'reason' in usable ? usable.reason : undefined;
/** CI sets STSTEST_REQUIRE_NODE=1: then an unusable node fails the run instead of skipping it. */
export const requireNode = process.env.STSTEST_REQUIRE_NODE === '1';
export const skipNode = nodeSkipReason !== undefined && !requireNode;

export function nodeGate(file: string): string {
  if (skipNode) console.warn(`[${file}] skipped: ${nodeSkipReason}`);
  return nodeSkipReason ? ` (node unusable: ${nodeSkipReason})` : '';
}

/** Runs test/stack/kube-node.sh with the given arguments. */
export function nodeScript(
  args: readonly string[],
  timeoutMs = 180_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile('bash', [SCRIPT, ...args], { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

export function readNode(): NodeStack {
  return JSON.parse(readFileSync(join(NODE_STACK_DIR, 'env.json'), 'utf8')) as NodeStack;
}

export async function isNodeUp(): Promise<boolean> {
  return (await nodeScript(['status'])).code === 0;
}

export async function ensureNode(): Promise<NodeStack> {
  const r = await nodeScript(['up']);
  if (r.code !== 0) throw new Error(`test/stack/kube-node.sh up failed:\n${r.stderr}`);
  return readNode();
}

export async function stopNode(): Promise<void> {
  const r = await nodeScript(['down']);
  if (r.code !== 0) throw new Error(`test/stack/kube-node.sh down failed:\n${r.stderr}`);
}

export async function importImage(archive: string): Promise<void> {
  const r = await nodeScript(['import', archive]);
  if (r.code !== 0) throw new Error(`kube-node.sh import ${archive} failed:\n${r.stderr}`);
}

/** One line of a container log as the kubelet (CRI) writes it. */
export interface LogLine {
  readonly time: string;
  readonly stream: 'stdout' | 'stderr';
  readonly text: string;
}

/**
 * Every log line of a container of a pod, over all its restarts (0.log, 1.log, ...), oldest first; [] when
 * the container has not started yet.
 */
export function containerLog(node: NodeStack, namespace: string, pod: string, container: string): LogLine[] {
  const base = `/proc/${node.holderPid}/root/var/log/pods`;
  let podDirs: string[];
  try {
    podDirs = readdirSync(base).filter((d) => d.startsWith(`${namespace}_${pod}_`));
  } catch {
    return [];
  }
  const out: LogLine[] = [];
  for (const podDir of podDirs) {
    let files: string[];
    try {
      files = readdirSync(join(base, podDir, container)).filter((f) => /^\d+\.log$/.test(f));
    } catch {
      continue;
    }
    files.sort((a, b) => parseInt(a, 10) - parseInt(b, 10));
    let partial = '';
    for (const f of files) {
      for (const raw of readFileSync(join(base, podDir, container, f), 'utf8').split('\n')) {
        const m = /^(\S+) (stdout|stderr) ([PF]) ?(.*)$/.exec(raw);
        if (!m) continue;
        // P: a partial line the runtime split; F: the line's last (or only) part.
        partial += m[4] ?? '';
        if (m[3] === 'F') {
          out.push({ time: m[1] ?? '', stream: m[2] as 'stdout' | 'stderr', text: partial });
          partial = '';
        }
      }
    }
  }
  return out;
}

/** The JSON lines of a container log (pino's, the test app's), non-JSON lines skipped. */
export function containerJson(
  node: NodeStack,
  namespace: string,
  pod: string,
  container: string,
): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const l of containerLog(node, namespace, pod, container)) {
    if (!l.text.startsWith('{')) continue;
    try {
      out.push(JSON.parse(l.text) as Record<string, unknown>);
    } catch {
      // a line that only looks like JSON
    }
  }
  return out;
}

/**
 * A pod volume's directory as the node sees it (through the holder's root: the kubelet mounts projected and
 * memory emptyDir volumes inside the node's mount namespace), e.g. plugin `kubernetes.io~projected`.
 */
export function podVolumeDir(node: NodeStack, podUid: string, plugin: string, volume: string): string {
  return join(
    `/proc/${node.holderPid}/root`,
    NODE_STACK_DIR,
    'kubelet',
    'root',
    'pods',
    podUid,
    'volumes',
    plugin,
    volume,
  );
}

/**
 * The memory cgroup (v1) directory of a container: <root>/kubepods/<qos>/pod<uid>/<containerID>. The
 * kubelet's working set is its memory.usage_in_bytes minus total_inactive_file.
 */
export function containerMemoryCgroup(node: NodeStack, podUid: string, containerId: string): string {
  const base = `/sys/fs/cgroup/memory${node.cgroupRoot}/kubepods`;
  const candidates = [join(base, `pod${podUid}`), join(base, 'burstable', `pod${podUid}`)];
  candidates.push(join(base, 'besteffort', `pod${podUid}`));
  for (const c of candidates) {
    try {
      accessSync(join(c, containerId));
      return join(c, containerId);
    } catch {
      // next QoS class
    }
  }
  throw new Error(`no memory cgroup for pod ${podUid} container ${containerId} under ${base}`);
}

/** Working set bytes as the kubelet counts it: usage minus inactive file pages. */
export function workingSetBytes(cgroupDir: string): number {
  const usage = Number(readFileSync(join(cgroupDir, 'memory.usage_in_bytes'), 'utf8').trim());
  const stat = readFileSync(join(cgroupDir, 'memory.stat'), 'utf8');
  const inactive = Number(/^total_inactive_file (\d+)$/m.exec(stat)?.[1] ?? '0');
  return Math.max(0, usage - inactive);
}
