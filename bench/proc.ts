/** Reads a process's memory and CPU time from /proc (Linux only). */
import { readdir, readFile, writeFile } from 'node:fs/promises';

/** Resident set size in KiB (VmRSS from /proc/<pid>/status). */
export async function rssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/** Clock ticks per second; 100 on every Linux this runs on (USER_HZ). */
export const CLOCK_TICKS_PER_SECOND = 100;

/** utime + stime of the process in milliseconds (fields 14 and 15 of /proc/<pid>/stat). */
export async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces; the fields after its closing parenthesis are fixed.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): utime is field 14 -> rest[11], stime field 15 -> rest[12].
  const ticks = Number(rest[11]) + Number(rest[12]);
  return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** Nanoseconds on CPU summed over every thread (/proc/<pid>/task/<tid>/schedstat, first field): exact, unlike ticks. */
export async function cpuNsAllThreads(pid: number): Promise<number> {
  let total = 0;
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    try {
      total += Number((await readFile(`/proc/${pid}/task/${tid}/schedstat`, 'utf8')).split(' ')[0]);
    } catch {
      // the thread exited between readdir and read
    }
  }
  return total;
}

/** Voluntary + involuntary context switches over every thread: how often the process woke up. */
export async function wakeups(pid: number): Promise<number> {
  let total = 0;
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    try {
      const status = await readFile(`/proc/${pid}/task/${tid}/status`, 'utf8');
      total += Number(/^voluntary_ctxt_switches:\s+(\d+)$/m.exec(status)?.[1] ?? 0);
      total += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)$/m.exec(status)?.[1] ?? 0);
    } catch {
      // the thread exited between readdir and read
    }
  }
  return total;
}

/** Memory figures of /proc/<pid>/status, KiB. */
export interface MemoryKiB {
  /** VmRSS: everything resident, the Node binary's shared pages included. */
  readonly rss: number;
  /**
   * RssAnon: private anonymous pages (heap, stacks, malloc). What one more pod really costs: the binary's
   * file pages are shared by every Node process of a node.
   */
  readonly anon: number;
  /** VmHWM: the peak RSS since start or since the last reset (`resetPeak`). */
  readonly hwm: number;
}

export async function memoryKiB(pid: number): Promise<MemoryKiB> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+)\\s+kB$`, 'm').exec(status);
    if (!m) throw new Error(`no ${name} for pid ${pid}`);
    return Number(m[1]);
  };
  return { rss: field('VmRSS'), anon: field('RssAnon'), hwm: field('VmHWM') };
}

/** Resets VmHWM to the current RSS (`echo 5 > /proc/<pid>/clear_refs`; the process is ours). */
export async function resetPeak(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5');
}
