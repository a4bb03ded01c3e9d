/**
 * test/stack/keycloak.sh's process handling, against a kc.sh stand-in (Keycloak itself takes a minute to
 * start and is covered by test/identity): like the real kc.sh when no rebuild is needed, the stand-in runs
 * the server as a CHILD process named java and does not exec it, so the PID file holds the shell.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYCLOAK_SCRIPT, KEYCLOAK_VERSION } from './keycloak.ts';

const VERSION = '0.0.0-stand-in';
const JAVA_17 = '/usr/lib/jvm/java-17-openjdk-amd64';
const skip = process.platform !== 'linux';
if (skip) console.warn('[keycloak-script.test] skipped: needs Linux (/proc, setsid, pgrep)');

/**
 * The server half of the stand-in, a script named java (so its comm is java, like the JVM's): answers
 * every request with 200 {} on --http-port.
 */
const SERVER = `#!/usr/bin/python3
import http.server, sys
port = int(next(a for a in sys.argv if a.startswith("--http-port=")).split("=")[1])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("content-type", "application/json"); self.end_headers(); self.wfile.write(b"{}")
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
`;

let root: string;
let env: NodeJS.ProcessEnv;
let port: number;

const sh = (args: string[]) =>
  new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile('bash', [KEYCLOAK_SCRIPT, ...args], { env, timeout: 60_000 }, (err, _out, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr: String(stderr) }),
    );
  });

const run = (cmd: string) =>
  new Promise<string>((resolve) => execFile('bash', ['-c', cmd], (_e, out) => resolve(String(out))));

/** Live (non-zombie) members of a process group with their comm, e.g. ["123 kc.sh", "124 java"]. */
const members = async (pgid: number) =>
  (
    await run(
      `for p in $(pgrep -g ${pgid}); do s=$(sed -E 's/^.*\\) ([A-Za-z]).*$/\\1/' /proc/$p/stat 2>/dev/null); [ "$s" = Z ] || [ -z "$s" ] || echo "$p $(cat /proc/$p/comm)"; done`,
    )
  )
    .split('\n')
    .filter(Boolean);

const portOpen = (p: number) =>
  new Promise<boolean>((resolve) => {
    const c = connect(p, '127.0.0.1');
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });

const freePort = async () => {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
};

const pgidOf = async () => Number((await readFile(join(root, 'state', 'keycloak.pid'), 'utf8')).trim());

describe.skipIf(skip)('keycloak.sh stop/down stop the whole process group (kc.sh stand-in)', () => {
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'kc-script-'));
    const bin = join(root, 'cache', `keycloak-${VERSION}`, 'bin');
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, 'java'), SERVER, { mode: 0o755 });
    // #!/bin/sh like the real kc.sh (its comm is then kc.sh); runs the server as a child, never execs it.
    await writeFile(
      join(bin, 'kc.sh'),
      `#!/bin/sh\necho "$JAVA_HOME" >"$(dirname "$0")/../java-home"\n"$(dirname "$0")/java" "$@" &\nwait\n`,
      {
        mode: 0o755,
      },
    );
    port = await freePort();
    env = {
      ...process.env,
      STS_SIDECAR_CACHE: join(root, 'cache'),
      KEYCLOAK_VERSION: VERSION,
      KEYCLOAK_PORT: String(port),
      // A port of its own: a KEYCLOAK_TM_PORT in the caller's environment belongs to the running Keycloak.
      KEYCLOAK_TM_PORT: String(await freePort()),
      STACK_DIR: join(root, 'state'),
    };
  });
  afterAll(async () => {
    await sh(['down']);
    await rm(root, { recursive: true, force: true });
  });

  it('stop ends kc.sh and the java child it forked, and the port is closed', async () => {
    const up = await sh(['up']);
    expect(up.code, up.stderr).toBe(0);
    const pgid = await pgidOf();
    const before = await members(pgid);
    expect(before.map((m) => m.split(' ')[1]).sort()).toEqual(['java', 'kc.sh']);
    expect(await portOpen(port)).toBe(true);
    const stop = await sh(['stop']);
    expect(stop.code, stop.stderr).toBe(0);
    expect(await members(pgid)).toEqual([]);
    expect(await portOpen(port)).toBe(false);
  });

  it('a java child left behind by a dead kc.sh is still stopped by down', async () => {
    expect((await sh(['up'])).code).toBe(0);
    const pgid = await pgidOf();
    await run(`kill -KILL ${pgid}`);
    await new Promise((r) => setTimeout(r, 200));
    expect((await members(pgid)).map((m) => m.split(' ')[1])).toEqual(['java']);
    expect((await sh(['status'])).code).toBe(1);
    const down = await sh(['down']);
    expect(down.code, down.stderr).toBe(0);
    expect(await members(pgid)).toEqual([]);
    expect(await portOpen(port)).toBe(false);
  });

  it('a PID file naming a process group that is not ours is left alone', async () => {
    const other = await run('setsid sleep 30 </dev/null >/dev/null 2>&1 & echo $!');
    const pid = Number(other.trim());
    await mkdir(join(root, 'state'), { recursive: true });
    await writeFile(join(root, 'state', 'keycloak.pid'), `${pid}\n`);
    expect((await sh(['stop'])).code).toBe(0);
    expect(await members(pid)).toHaveLength(1);
    await run(`kill ${pid}`);
  });

  it.skipIf(!existsSync(`${JAVA_17}/bin/java`))(
    'up runs kc.sh on Java 17 when JAVA_HOME is another major version',
    async () => {
      const jdk = join(root, 'jdk-11');
      await mkdir(join(jdk, 'bin'), { recursive: true });
      await writeFile(
        join(jdk, 'bin', 'java'),
        '#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n',
        {
          mode: 0o755,
        },
      );
      const saved = env;
      env = { ...env, JAVA_HOME: jdk };
      try {
        const up = await sh(['up']);
        expect(up.code, up.stderr).toBe(0);
        expect(up.stderr).toContain(`is Java 11; Keycloak ${VERSION} needs 17 or 21: using ${JAVA_17}`);
        const home = await readFile(join(root, 'cache', `keycloak-${VERSION}`, 'java-home'), 'utf8');
        expect(home.trim()).toBe(JAVA_17);
      } finally {
        expect((await sh(['down'])).code).toBe(0);
        env = saved;
      }
    },
  );
});

describe.skipIf(skip)('keycloak.sh install (Maven stand-in)', () => {
  it('concurrent installs fetch once, unpack an executable kc.sh, and delete the ~/.m2 copy', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kc-install-'));
    try {
      const version = '0.0.1-stand-in';
      // mvn stand-in: counts its calls and drops a dist zip where Maven would (made with Python's zipfile).
      const fakeBin = join(dir, 'bin');
      await mkdir(fakeBin);
      await writeFile(
        join(fakeBin, 'mvn'),
        `#!/bin/sh
echo x >>"${dir}/mvn-calls"
sleep 1
d="$HOME/.m2/repository/org/keycloak/keycloak-quarkus-dist/${version}"
mkdir -p "$d"
/usr/bin/python3 - "$d/keycloak-quarkus-dist-${version}.zip" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    i = zipfile.ZipInfo("keycloak-${version}/bin/kc.sh"); i.external_attr = 0o755 << 16
    z.writestr(i, "#!/bin/sh" + chr(10))
    z.writestr("keycloak-${version}/lib/x.jar", "jar")
PY
`,
        { mode: 0o755 },
      );
      const installEnv = {
        ...process.env,
        HOME: join(dir, 'home'),
        PATH: `${fakeBin}:${process.env.PATH ?? ''}`,
        STS_SIDECAR_CACHE: join(dir, 'cache'),
        KEYCLOAK_VERSION: version,
        STACK_DIR: join(dir, 'state'),
      };
      const install = () =>
        new Promise<{ code: number; stderr: string }>((resolve) =>
          execFile(
            'bash',
            [KEYCLOAK_SCRIPT, 'install'],
            { env: installEnv, timeout: 60_000 },
            (err, _o, stderr) => resolve({ code: err ? 1 : 0, stderr: String(stderr) }),
          ),
        );
      const results = await Promise.all([install(), install(), install()]);
      for (const r of results) expect(r.code, r.stderr).toBe(0);
      expect((await readFile(join(dir, 'mvn-calls'), 'utf8')).trim().split('\n')).toHaveLength(1);
      const kc = join(dir, 'cache', `keycloak-${version}`, 'bin', 'kc.sh');
      expect((await stat(kc)).mode & 0o111).not.toBe(0);
      expect(
        existsSync(
          join(dir, 'home', '.m2', 'repository', 'org', 'keycloak', 'keycloak-quarkus-dist', version),
        ),
      ).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the Keycloak version', () => {
  it('keycloak.sh, test/stack/keycloak.ts and the first tested version in docs/identity.md agree', async () => {
    const script = await readFile(KEYCLOAK_SCRIPT, 'utf8');
    const scriptDefault = /^VERSION="\$\{KEYCLOAK_VERSION:-([0-9.]+)\}"$/m.exec(script)?.[1];
    const doc = await readFile(join(import.meta.dirname, '../../docs/identity.md'), 'utf8');
    const documented = /Tested versions: \*\*([0-9.]+)\*\*/.exec(doc)?.[1];
    expect(scriptDefault).toMatch(/^26\.7\.\d+$/);
    expect(documented).toBe(scriptDefault);
    // Unless the run pins another one, the tests expect the script's default in the cache.
    if (process.env.KEYCLOAK_VERSION === undefined) expect(KEYCLOAK_VERSION).toBe(scriptDefault);
  });
});
