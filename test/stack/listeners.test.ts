// Issue 18: every TCP listener the stack scripts start is on a port the script chose (none left to the OS, as
// Keycloak's transaction manager and Ceph's OSD used to be), so stacks of two checkouts, or CI beside a
// developer, never meet on a port nobody picked. Each script records its process groups (STACK_PIDS) and the
// ports it chose (STACK_LISTEN_PORTS, ports and lo-hi ranges) in its env file; this reads the listeners from
// /proc, independently of the scripts' own check (require_chosen_ports in test/stack/lib.sh).
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_STACK_DIR, ensureRgw, rgwUsable } from './ceph-rgw.ts';
import { ensureKeycloak, keycloakUsable } from './keycloak.ts';
import { ensureKube, KUBE_STACK_DIR, kubeUsable } from './kube.ts';
import { ensureSeaweedfs, SEAWEEDFS_STACK_DIR, seaweedfsUsable } from './seaweedfs.ts';
import { ensureMinio, MINIO_STACK_DIR, minioUsable } from './minio.ts';

const REPO_ROOT = join(import.meta.dirname, '../..');

/** Inode -> port of every listening TCP socket on the host (IPv4 and IPv6 tables). */
function listeningSockets(): Map<string, number> {
  const out = new Map<string, number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is HEX_IP:HEX_PORT; st 0A is LISTEN; the inode is the tenth column.
      if (f.length < 10 || f[3] !== '0A') continue;
      out.set(f[9]!, parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return out;
}

/** Live members of the process groups (a JVM that kc.sh forked is in kc.sh's group). */
function groupMembers(pgids: readonly number[]): number[] {
  const members: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // After the command name in parentheses: state, ppid, pgrp.
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state !== 'Z' && pgids.includes(Number(pgrp))) members.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return members;
}

/** The TCP ports the processes listen on, from their socket fds. */
export function listenPorts(pids: readonly number[]): number[] {
  const sockets = listeningSockets();
  const ports = new Set<number>();
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      const port = inode === undefined ? undefined : sockets.get(inode);
      if (port !== undefined) ports.add(port);
    }
  }
  return [...ports].sort((a, b) => a - b);
}

/** True when the port is one of "a,b,lo-hi". */
export function isChosen(port: number, chosen: string): boolean {
  return chosen.split(',').some((c) => {
    const [lo, hi] = c.split('-').map(Number);
    return hi === undefined ? port === lo : port >= lo! && port <= hi;
  });
}

function envValue(envFile: string, key: string): string {
  const line = readFileSync(envFile, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${key}=`));
  if (line === undefined) throw new Error(`${envFile} has no ${key}`);
  return line.slice(key.length + 1);
}

const stacks = [
  {
    name: 'ceph-rgw.sh',
    usable: rgwUsable,
    required: 'STSTEST_REQUIRE_RGW',
    ensure: ensureRgw,
    env: join(DEFAULT_STACK_DIR, 'env'),
  },
  {
    name: 'keycloak.sh',
    usable: keycloakUsable,
    required: 'STSTEST_REQUIRE_KEYCLOAK',
    ensure: ensureKeycloak,
    env: join(REPO_ROOT, '.stack', 'keycloak', 'env'),
  },
  {
    name: 'seaweedfs.sh',
    usable: seaweedfsUsable,
    required: 'STSTEST_REQUIRE_SEAWEEDFS',
    ensure: ensureSeaweedfs,
    env: join(SEAWEEDFS_STACK_DIR, 'env'),
  },
  {
    name: 'minio.sh',
    usable: minioUsable,
    required: 'STSTEST_REQUIRE_MINIO',
    ensure: ensureMinio,
    env: join(MINIO_STACK_DIR, 'env'),
  },
  {
    name: 'kube-apiserver.sh',
    usable: kubeUsable,
    required: 'STSTEST_REQUIRE_KUBE',
    ensure: ensureKube,
    env: join(KUBE_STACK_DIR, 'env'),
  },
];

describe('stack listeners', () => {
  it('isChosen reads ports and ranges', () => {
    expect(isChosen(23181, '23180,23181')).toBe(true);
    expect(isChosen(23305, '23300,23301-23310')).toBe(true);
    expect(isChosen(41331, '23180,23181')).toBe(false);
    expect(isChosen(6824, '23300,23301-23310')).toBe(false);
  });

  for (const s of stacks) {
    const usable = s.usable();
    const reason = 'reason' in usable ? usable.reason : undefined;
    const skip = reason !== undefined && process.env[s.required] !== '1';
    it.skipIf(skip)(
      `${s.name}: every port its servers listen on is one it chose${skip ? ` (skipped: ${reason})` : ''}`,
      async () => {
        if (reason !== undefined) throw new Error(`${s.required}=1 but ${reason}`);
        // Another test file may be restarting the stack (Keycloak's outage test): ensure, then read the
        // env that this up wrote, until its process groups are alive.
        let members: number[] = [];
        let chosen = '';
        for (let i = 0; i < 20 && members.length === 0; i++) {
          await s.ensure();
          const pgids = envValue(s.env, 'STACK_PIDS').split(',').map(Number);
          chosen = envValue(s.env, 'STACK_LISTEN_PORTS');
          members = groupMembers(pgids);
          if (members.length === 0) await new Promise((r) => setTimeout(r, 3000));
        }
        const ports = listenPorts(members);
        expect(ports.length, `${s.name}: no listener found for pids ${members.join(',')}`).toBeGreaterThan(0);
        expect(
          ports.filter((p) => !isChosen(p, chosen)),
          `${s.name} listens on ports it did not choose (chosen: ${chosen})`,
        ).toEqual([]);
      },
      300_000,
    );
  }
});
