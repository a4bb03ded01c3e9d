/**
 * test/stack/kube-node.sh's promise that `down` leaves nothing behind, checked against planted leftovers
 * in a scratch KUBE_NODE_STACK_DIR (no node is started): a process in a cgroup named like the node's root,
 * a process in a mount namespace recorded as the node's, a mount of the state dir in the caller's mount
 * table, a sysctl that no longer reads as recorded at `up`. Everything planted is ours: the cgroup is named
 * after the scratch dir (sts-node-<hash>), the mounts live in private mount namespaces, and no sysctl is
 * written (only the record of what it read before).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readlinkSync, rmdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'kube-node.sh');

// Planting needs root (cgroups, mount namespaces); CI runs as root and requires the node.
const reason =
  process.platform !== 'linux'
    ? 'Linux only'
    : process.getuid?.() !== 0
      ? 'needs root (cgroups, mount namespaces)'
      : undefined;
const required = process.env.STSTEST_REQUIRE_NODE === '1';
if (reason && !required) console.warn(`[kube-node-script] skipped: ${reason}`);

function runScript(
  args: string[],
  stackDir: string,
  wrap: string[] = [],
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const [file, ...rest] = [...wrap, 'bash', SCRIPT, ...args];
    const child = spawn(file!, rest, { env: { ...process.env, KUBE_NODE_STACK_DIR: stackDir } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

/** The cgroup v1 pids hierarchy, or the cgroup2 tree where there is no v1. */
function cgroupBase(): string {
  return existsSync('/sys/fs/cgroup/pids/cgroup.procs') ? '/sys/fs/cgroup/pids' : '/sys/fs/cgroup';
}

/** The argv of `sh -c <script> [args]` in a private mount namespace of its own: its mounts reach nothing else. */
const privateNamespace = (script: string, ...args: string[]): string[] => [
  'unshare',
  '-m',
  '--propagation',
  'private',
  'sh',
  '-c',
  script,
  ...args,
];
const alive = (p: ChildProcess): boolean => p.exitCode === null && p.signalCode === null;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (ok()) return;
    await sleep(50);
  }
  throw new Error(`${what}: not after 5 s`);
}

async function waitExit(p: ChildProcess): Promise<void> {
  if (!alive(p)) return;
  await new Promise((r) => p.once('exit', r));
}

describe.skipIf(reason !== undefined && !required)(
  `kube-node.sh down: nothing left behind${reason ? ` (${reason})` : ''}`,
  () => {
    let dir: string;
    let stackDir: string;
    let cgroup: string;
    const started: ChildProcess[] = [];

    beforeEach(async () => {
      if (reason) throw new Error(`STSTEST_REQUIRE_NODE=1 but the leftover checks cannot run: ${reason}`);
      dir = await mkdtemp(join(tmpdir(), 'kube-node-script-'));
      stackDir = join(dir, 'kube-node');
      // What `up` makes: the run dir (down refuses a dir that does not look like a node's) and the sysctl files.
      await mkdir(join(stackDir, 'run'), { recursive: true });
      await mkdir(join(stackDir, 'sysctl'), { recursive: true });
      await writeFile(join(stackDir, 'sysctl', 'panic'), '10\n');
      const hash = createHash('sha256').update(stackDir).digest('hex').slice(0, 8);
      cgroup = join(cgroupBase(), `sts-node-${hash}`);
    });
    afterEach(async () => {
      for (const p of started.splice(0)) {
        p.kill('SIGKILL');
        await waitExit(p);
      }
      if (existsSync(cgroup)) rmdirSync(cgroup);
      await rm(dir, { recursive: true, force: true });
      await rm(`${stackDir}.lock`, { force: true });
    });

    it('reports nothing for a node that left nothing', async () => {
      await writeFile(join(stackDir, 'machine-sysctls'), currentSysctls());
      const res = await runScript(['leftovers'], stackDir);
      expect(res.stderr).toContain('nothing left behind');
      expect(res.code).toBe(0);
    });

    it('names a process in a cgroup of the node root and the cgroup itself; down kills it and removes the cgroup', async () => {
      await mkdir(cgroup);
      const proc = spawn('sleep', ['300'], { stdio: 'ignore' });
      started.push(proc);
      await writeFile(join(cgroup, 'cgroup.procs'), `${proc.pid}\n`);

      const res = await runScript(['leftovers'], stackDir);
      expect(res.code).toBe(1);
      expect(res.stderr).toContain(`left behind: process ${proc.pid} (sleep) in cgroup ${cgroup}`);
      expect(res.stderr).toContain(`left behind: cgroup ${cgroup}`);

      const down = await runScript(['down'], stackDir);
      expect(down.stderr).toContain('nothing left behind');
      expect(down.code).toBe(0);
      await waitExit(proc);
      expect(existsSync(cgroup)).toBe(false);
      expect(existsSync(stackDir)).toBe(false);
    });

    it('names a process left in the node mount namespace after its holder is gone; down kills it', async () => {
      // A private mount namespace with the node's own mark: our sysctl file bound over kernel.panic.
      const [file, ...args] = privateNamespace(
        `mount --bind '${join(stackDir, 'sysctl', 'panic')}' /proc/sys/kernel/panic && exec sleep 300`,
      );
      const proc = spawn(file!, args, { stdio: 'ignore' });
      started.push(proc);
      await waitFor('the planted namespace', () => {
        try {
          return readFileSync(`/proc/${proc.pid}/mountinfo`, 'utf8').includes(' /proc/sys/kernel/panic ');
        } catch {
          return false;
        }
      });
      const ns = readlinkSync(`/proc/${proc.pid}/ns/mnt`);
      expect(ns).not.toBe(readlinkSync('/proc/self/ns/mnt'));
      await writeFile(join(stackDir, 'run', 'mntns'), `${ns}\n`);

      const res = await runScript(['leftovers'], stackDir);
      expect(res.code).toBe(1);
      expect(res.stderr).toContain(
        `left behind: process ${proc.pid} (sleep) in the node mount namespace ${ns}`,
      );

      const down = await runScript(['down'], stackDir);
      expect(down.stderr).toContain('nothing left behind');
      expect(down.code).toBe(0);
      await waitExit(proc);
    });

    it('names a mount of the state dir in the mount table of the caller', async () => {
      await mkdir(join(stackDir, 'varlog'));
      await mkdir(join(stackDir, 'mnt'));
      // The check runs inside a private mount namespace of its own, where the planted mount is.
      const res = await runScript(
        ['leftovers'],
        stackDir,
        privateNamespace(
          `mount --bind '${join(stackDir, 'varlog')}' '${join(stackDir, 'mnt')}' && exec "$@"`,
          'sh',
        ),
      );
      expect(res.code).toBe(1);
      expect(res.stderr).toContain(`left behind: mount ${join(stackDir, 'mnt')} (`);
      expect(statSync(join(stackDir, 'mnt')).isDirectory()).toBe(true);
    });

    it('down fails, naming the sysctl and keeping the state dir, when one reads otherwise than before up', async () => {
      const panic = Number(readFileSync('/proc/sys/kernel/panic', 'utf8').trim());
      // Nothing is written to the machine: the record claims the value before `up` was another one.
      await writeFile(
        join(stackDir, 'machine-sysctls'),
        currentSysctls().replace(/^kernel\.panic=.*$/m, `kernel.panic=${panic + 1}`),
      );
      const down = await runScript(['down'], stackDir);
      expect(down.code).toBe(1);
      expect(down.stderr).toContain(
        `left behind: sysctl kernel.panic is ${panic}, was ${panic + 1} before up`,
      );
      expect(down.stderr).toContain('down left the above behind');
      expect(existsSync(join(stackDir, 'machine-sysctls'))).toBe(true);
    });
  },
);

function currentSysctls(): string {
  const read = (k: string) => readFileSync(`/proc/sys/${k.replaceAll('.', '/')}`, 'utf8').trim();
  return ['vm.overcommit_memory', 'kernel.panic', 'kernel.panic_on_oops']
    .map((k) => `${k}=${read(k)}\n`)
    .join('');
}
