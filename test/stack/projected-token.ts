/**
 * Writes a token the way kubelet's AtomicWriter updates a projected service-account token volume:
 *
 *   dir/..2026_11_22_18_45_00.123456789/token   new payload in a fresh hidden timestamped dir
 *   dir/..data_tmp -> ..2026_11_22_...          temporary symlink ...
 *   dir/..data                                  ... renamed over ..data (the atomic swap)
 *   dir/token -> ..data/token                   visible symlink, created once
 *
 * then the previous timestamped dir is removed. Readers that open `dir/token` always see a complete file.
 */
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, readlink, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';

function timestampDirName(now: Date): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const stamp =
    `${now.getUTCFullYear()}_${p(now.getUTCMonth() + 1)}_${p(now.getUTCDate())}_` +
    `${p(now.getUTCHours())}_${p(now.getUTCMinutes())}_${p(now.getUTCSeconds())}`;
  // kubelet: os.MkdirTemp(dir, "..2006_01_02_15_04_05.") -> a random numeric suffix.
  const suffix = String(randomBytes(4).readUInt32BE(0)).padStart(10, '0');
  return `..${stamp}.${suffix}`;
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

export async function writeProjectedToken(dir: string, token: string, fileName = 'token'): Promise<void> {
  if (fileName.includes('/') || fileName.startsWith('..')) throw new Error(`invalid file name: ${fileName}`);
  await mkdir(dir, { recursive: true });

  const dataLink = join(dir, '..data');
  const tmpLink = join(dir, '..data_tmp');
  let oldTsDir: string | undefined;
  try {
    oldTsDir = await readlink(dataLink);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }

  // 1. New timestamped dir with the payload.
  let tsName = timestampDirName(new Date());
  for (let i = 0; ; i++) {
    try {
      await mkdir(join(dir, tsName), { mode: 0o755 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || i > 10) throw err;
      tsName = timestampDirName(new Date());
    }
  }
  const tsDir = join(dir, tsName);
  const file = join(tsDir, fileName);
  await writeFile(file, token, { mode: 0o644 });
  await chmod(file, 0o644);

  // 2. ..data_tmp -> tsName, renamed over ..data.
  try {
    await unlink(tmpLink);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await symlink(tsName, tmpLink);
  await rename(tmpLink, dataLink);

  // 3. The visible symlink, created once.
  const visible = join(dir, fileName);
  if (!(await exists(visible))) await symlink(join('..data', fileName), visible);

  // 4. Drop the previous payload dir.
  if (oldTsDir !== undefined && basename(oldTsDir) !== tsName && basename(oldTsDir).startsWith('..')) {
    await rm(join(dir, basename(oldTsDir)), { recursive: true, force: true });
  }
}
