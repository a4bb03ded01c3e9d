// The container specs of the examples, the README manifests and the chart templates agree with the
// sidecar's real configuration interface (VARIABLES in src/config/schema.ts) and its CLI/HTTP.
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REQUIRED_VARIABLES, VARIABLES, type VariableName } from '../../src/config/schema.ts';
import {
  CHART_DIR,
  EXAMPLES_DIR,
  allCopyableManifests,
  containersOf,
  defineBody,
  envMap,
  isObject,
  isSidecar,
  listOf,
  podSpecOf,
  readText,
  readYaml,
  stringList,
  stubYaml,
  type Container,
  type JsonObject,
  type SourcedDoc,
} from './support.ts';

const CLI_COMMANDS = new Set(['run', 'once', 'credential-process']);
const HTTP_PORT = Number(VARIABLES.STS_SIDECAR_LISTEN.default.split(':')[1]);
const CREDENTIAL_FILES = ['access-key', 'secret-key', 'session-token', 'expiration', 'credentials.json'];
const APP_REFS: Record<string, string> = {
  ARTIFACTSTORE_S3_ACCESS_KEY_REF: 'access-key',
  ARTIFACTSTORE_S3_SECRET_KEY_REF: 'secret-key',
  ARTIFACTSTORE_S3_SESSION_TOKEN_REF: 'session-token',
  ARTIFACTSTORE_S3_CREDENTIAL_EXPIRATION_REF: 'expiration',
};
const SAMPLE: Partial<Record<VariableName, string>> = {
  STS_SIDECAR_TENANT: 'team-a',
  STS_SIDECAR_BUCKET: 'artifacts',
  STS_SIDECAR_PREFIX: 'team-a/',
  STS_SIDECAR_FLEX_AUTH_URL: 'https://flex-auth.auth.svc/v1/decisions',
  STS_SIDECAR_STS_ENDPOINT: 'https://rgw.storage.svc:7480',
  STS_SIDECAR_BACKEND: 'ceph-rgw',
  STS_SIDECAR_ROLE_ARN: 'arn:aws:iam:::role/artifact-store',
  STS_SIDECAR_TOKEN_AUDIENCE: 'sts.example.com',
};

function isVariable(name: string): name is VariableName {
  return Object.hasOwn(VARIABLES, name);
}

/** The value the sidecar sees for a variable: explicit env, else its default. */
function effective(env: Map<string, string | undefined>, name: VariableName): string | undefined {
  return env.has(name) ? env.get(name) : VARIABLES[name].default;
}

function backendOf(env: Map<string, string | undefined>): string {
  return effective(env, 'STS_SIDECAR_BACKEND') ?? (env.has('STS_SIDECAR_STS_ENDPOINT') ? 'generic' : 'aws');
}

function mountPathOf(c: JsonObject, volume: string): string | undefined {
  const m = listOf(c.volumeMounts).find((v) => v.name === volume);
  return typeof m?.mountPath === 'string' ? m.mountPath : undefined;
}

function mountOf(c: JsonObject, path: string): JsonObject | undefined {
  return listOf(c.volumeMounts).find((v) => v.mountPath === path);
}

function volumeOf(spec: JsonObject, name: string): JsonObject | undefined {
  return listOf(spec.volumes).find((v) => v.name === name);
}

function probe(c: JsonObject, kind: string): { path: unknown; port: unknown } | undefined {
  const p = c[kind];
  if (!isObject(p) || !isObject(p.httpGet)) return undefined;
  return { path: p.httpGet.path, port: p.httpGet.port };
}

interface Workload {
  readonly source: string;
  readonly doc: JsonObject;
  readonly spec: JsonObject;
  readonly sidecars: Array<{ c: Container; init: boolean }>;
}

function workloads(docs: SourcedDoc[]): Workload[] {
  return docs.flatMap(({ source, doc }) => {
    const spec = podSpecOf(doc);
    if (!spec) return [];
    const sidecars = [
      ...containersOf(spec, 'initContainers').map((c) => ({ c, init: true })),
      ...containersOf(spec, 'containers').map((c) => ({ c, init: false })),
    ].filter(({ c }) => isSidecar(c));
    return [{ source: source.replace(/^.*\/(examples|helm)\//, '$1/'), doc, spec, sidecars }];
  });
}

const manifestWorkloads = workloads(allCopyableManifests());

describe('example and README workloads agree with the sidecar config', () => {
  it('there are workloads with the sidecar to check', () => {
    expect(manifestWorkloads.filter((w) => w.sidecars.length > 0).length).toBeGreaterThanOrEqual(3);
  });

  for (const w of manifestWorkloads) {
    describe(`${w.source} ${String(w.doc.kind)}`, () => {
      it('runs the sidecar', () => {
        expect(w.sidecars.length).toBeGreaterThan(0);
      });

      for (const { c, init } of w.sidecars) {
        const env = envMap(c);
        const args = stringList(c.args);
        const command = args[0] ?? 'run';

        it(`${c.name}: sets only known STS_SIDECAR_* variables, with values the sidecar accepts`, () => {
          for (const [name, value] of env) {
            if (!name.startsWith('STS_SIDECAR_')) continue;
            expect(isVariable(name), `${name} is not a key of VARIABLES`).toBe(true);
            if (isVariable(name) && value !== undefined) {
              const r = VARIABLES[name].schema.safeParse(value);
              expect(r.success, `${name}=${value}: ${r.success ? '' : r.error.message}`).toBe(true);
            }
          }
        });

        it(`${c.name}: sets every required variable (and ROLE_ARN for aws/ceph-rgw)`, () => {
          for (const name of REQUIRED_VARIABLES) expect(env.get(name), name).toBeTruthy();
          if (['aws', 'ceph-rgw'].includes(backendOf(env)))
            expect(env.get('STS_SIDECAR_ROLE_ARN')).toBeTruthy();
        });

        it(`${c.name}: uses the documented sample values`, () => {
          for (const [name, value] of Object.entries(SAMPLE)) {
            if (env.has(name)) expect(env.get(name), name).toBe(value);
          }
        });

        it(`${c.name}: runs a real CLI command`, () => {
          expect(
            c.command,
            'the image ENTRYPOINT runs the bundle; override args, not command',
          ).toBeUndefined();
          expect(args.length).toBeLessThanOrEqual(1);
          expect(CLI_COMMANDS.has(command), command).toBe(true);
        });

        it(`${c.name}: is hardened`, () => {
          const sc = c.securityContext;
          expect(isObject(sc)).toBe(true);
          if (!isObject(sc)) return;
          expect(sc.runAsNonRoot).toBe(true);
          expect(sc.runAsUser).toBe(65532);
          expect(sc.readOnlyRootFilesystem).toBe(true);
          expect(sc.allowPrivilegeEscalation).toBe(false);
          expect(isObject(sc.capabilities) && stringList(sc.capabilities.drop)).toEqual(['ALL']);
          const seccomp = isObject(sc.seccompProfile) ? sc.seccompProfile : w.spec.securityContext;
          expect(JSON.stringify(seccomp)).toContain('RuntimeDefault');
          const limits = isObject(c.resources) ? c.resources.limits : undefined;
          expect(isObject(limits) && typeof limits.memory === 'string').toBe(true);
        });

        it(`${c.name}: mounts the projected token where STS_SIDECAR_TOKEN_FILE points`, () => {
          const tokenFile = effective(env, 'STS_SIDECAR_TOKEN_FILE') ?? '';
          const m = mountOf(c, dirname(tokenFile));
          expect(m, `no mount at ${dirname(tokenFile)}`).toBeDefined();
          expect(m?.readOnly).toBe(true);
          const vol = volumeOf(w.spec, String(m?.name));
          const src = listOf(isObject(vol?.projected) ? vol.projected.sources : undefined)[0];
          const sat = isObject(src?.serviceAccountToken) ? src.serviceAccountToken : undefined;
          expect(sat, 'token volume is a projected serviceAccountToken').toBeDefined();
          expect(sat?.path).toBe(tokenFile.slice(dirname(tokenFile).length + 1));
          expect(Number(sat?.expirationSeconds)).toBeGreaterThanOrEqual(600);
          const aud = env.get('STS_SIDECAR_TOKEN_AUDIENCE');
          const exchange = env.get('STS_SIDECAR_IDENTITY_EXCHANGE');
          if (exchange !== undefined && exchange !== 'none') {
            // The projected token goes only to the IdP: its audience is the IdP's issuer (docs/identity.md),
            // and STS_SIDECAR_TOKEN_AUDIENCE applies to the exchanged token.
            expect(String(env.get('STS_SIDECAR_IDP_TOKEN_URL'))).toMatch(
              new RegExp(`^${String(sat?.audience).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/`),
            );
            expect(aud).toBe('sts.example.com');
          } else {
            expect(sat?.audience).toBe('sts.example.com');
            if (aud !== undefined) expect(aud).toBe(sat?.audience);
          }
        });

        it(`${c.name}: writes into a tmpfs emptyDir mounted read-write at STS_SIDECAR_OUTPUT_DIR`, () => {
          const out = effective(env, 'STS_SIDECAR_OUTPUT_DIR') ?? '';
          const m = mountOf(c, out);
          expect(m, `no mount at ${out}`).toBeDefined();
          expect(m?.readOnly ?? false).toBe(false);
          const vol = volumeOf(w.spec, String(m?.name));
          expect(isObject(vol?.emptyDir) && vol.emptyDir.medium).toBe('Memory');
          expect(isObject(vol?.emptyDir) && typeof vol.emptyDir.sizeLimit).toBe('string');
          const fsGroup = isObject(w.spec.securityContext) ? w.spec.securityContext.fsGroup : undefined;
          expect(fsGroup, 'pod fsGroup so the app can read the 0440 files').toBe(65532);
        });

        it(`${c.name}: CA file, when set, is on a read-only mount`, () => {
          const ca = env.get('STS_SIDECAR_CA_FILE');
          if (ca === undefined) return;
          expect(mountOf(c, dirname(ca))?.readOnly).toBe(true);
        });

        if (command === 'run') {
          it(`${c.name}: serves and probes HTTP on ${HTTP_PORT} (/healthz, /readyz)`, () => {
            const listen = effective(env, 'STS_SIDECAR_LISTEN') ?? '';
            expect(Number(listen.split(':')[1])).toBe(HTTP_PORT);
            expect(listOf(c.ports).map((p) => p.containerPort)).toContain(HTTP_PORT);
            expect(probe(c, 'livenessProbe')).toEqual({ path: '/healthz', port: HTTP_PORT });
            expect(probe(c, 'readinessProbe')).toEqual({ path: '/readyz', port: HTTP_PORT });
            if (init) expect(probe(c, 'startupProbe')).toEqual({ path: '/readyz', port: HTTP_PORT });
          });

          it(`${c.name}: as an init container it is a native sidecar (restartPolicy Always)`, () => {
            if (init) expect(c.restartPolicy).toBe('Always');
            else expect(c.restartPolicy).toBeUndefined();
          });
        } else {
          it(`${c.name}: ${command} runs to completion as a plain init container`, () => {
            expect(init).toBe(true);
            expect(c.restartPolicy).toBeUndefined();
            for (const p of ['startupProbe', 'livenessProbe', 'readinessProbe']) expect(c[p]).toBeUndefined();
          });
        }
      }

      it('app containers mount the credential dir read-only and point at real files', () => {
        const sidecar = w.sidecars[0]?.c;
        if (!sidecar) return;
        const out = effective(envMap(sidecar), 'STS_SIDECAR_OUTPUT_DIR') ?? '';
        const volume = listOf(sidecar.volumeMounts).find((m) => m.mountPath === out)?.name;
        const apps = containersOf(w.spec, 'containers').filter((c) => !isSidecar(c));
        expect(apps.length).toBeGreaterThan(0);
        for (const app of apps) {
          const dir = mountPathOf(app, String(volume));
          expect(dir, `${app.name} mounts ${String(volume)}`).toBeDefined();
          expect(listOf(app.volumeMounts).find((m) => m.name === volume)?.readOnly).toBe(true);
          expect(mountPathOf(app, 'sts-sidecar-token'), 'apps do not see the token').toBeUndefined();
          for (const [name, value] of envMap(app)) {
            const file = APP_REFS[name];
            if (file !== undefined) expect(value).toBe(`${String(dir)}/${file}`);
          }
        }
      });
    });
  }
});

describe('examples tell one consistent story', () => {
  const byFile = (file: string): Workload[] =>
    manifestWorkloads.filter(
      (w) => w.source === `examples/${file}` || w.source.startsWith(`examples/${file}#`),
    );

  it('artifact-store-deployment.yaml: native sidecar plus the four ARTIFACTSTORE_*_REF variables', () => {
    const [w] = byFile('artifact-store-deployment.yaml');
    expect(w?.doc.kind).toBe('Deployment');
    expect(w?.sidecars.map((s) => s.init)).toEqual([true]);
    const app = w ? containersOf(w.spec, 'containers')[0] : undefined;
    expect([...envMap(app ?? { name: '' }).keys()]).toEqual(expect.arrayContaining(Object.keys(APP_REFS)));
    expect(w?.spec.automountServiceAccountToken).toBe(false);
  });

  it('once-job.yaml: a Job whose init container runs once and whose main container reads the files', () => {
    const [w] = byFile('once-job.yaml');
    expect(w?.doc.kind).toBe('Job');
    expect(w?.spec.restartPolicy).toBe('Never');
    expect(w?.sidecars.map((s) => [s.init, stringList(s.c.args)])).toEqual([[true, ['once']]]);
    const main = w ? containersOf(w.spec, 'containers')[0] : undefined;
    const script = stringList(main?.command).join(' ');
    const dir = mountPathOf(main ?? { name: '' }, 'sts-sidecar-credentials');
    expect(dir).toBe(VARIABLES.STS_SIDECAR_OUTPUT_DIR.default);
    expect(script).toContain(String(dir));
    for (const f of ['access-key', 'secret-key', 'session-token'])
      expect(script).toMatch(new RegExp(`/${f}\\b`));
    const ttl = Number(envMap(w?.sidecars[0]?.c ?? { name: '' }).get('STS_SIDECAR_TTL_SECONDS'));
    expect(Number(isObject(w?.doc.spec) ? w.doc.spec.activeDeadlineSeconds : NaN)).toBeLessThan(ttl);
  });

  it('aws-sdk-credential-process.yaml: AWS_CONFIG_FILE is a mounted config whose credential_process reads credentials.json', () => {
    const docs = allCopyableManifests().filter((d) => d.source.includes('aws-sdk-credential-process.yaml'));
    const cm = docs.find((d) => d.doc.kind === 'ConfigMap')?.doc;
    const [w] = byFile('aws-sdk-credential-process.yaml');
    const app = w ? containersOf(w.spec, 'containers').find((c) => !isSidecar(c)) : undefined;
    const configPath = envMap(app ?? { name: '' }).get('AWS_CONFIG_FILE') ?? '';
    const mount = listOf(app?.volumeMounts).find((m) => m.mountPath === dirname(configPath));
    const vol = w ? volumeOf(w.spec, String(mount?.name)) : undefined;
    expect(isObject(vol?.configMap) && vol.configMap.name).toBe(isObject(cm?.metadata) && cm.metadata.name);
    const data = isObject(cm?.data) ? cm.data : {};
    const config = String(data[configPath.slice(dirname(configPath).length + 1)]);
    expect(config).toMatch(/^\[default\]$/m);
    const cp = /^credential_process\s*=\s*(.+)$/m.exec(config)?.[1] ?? '';
    const credentialsDir = mountPathOf(app ?? { name: '' }, 'sts-sidecar-credentials');
    expect(cp).toBe(`cat ${String(credentialsDir)}/credentials.json`);
  });

  it('flex-auth-request.json is exactly what the artifact-store sidecar asks for', () => {
    const req = JSON.parse(readText(join(EXAMPLES_DIR, 'flex-auth-request.json'))) as JsonObject;
    const [w] = byFile('artifact-store-deployment.yaml');
    const env = envMap(w?.sidecars[0]?.c ?? { name: '' });
    const v = (n: VariableName): string => effective(env, n) ?? '';
    expect(Object.keys(req).sort()).toEqual([
      'actions',
      'protected_system',
      'resource',
      'tenant',
      'ttl_seconds',
    ]);
    expect(req).toEqual({
      protected_system: 'object-storage',
      tenant: v('STS_SIDECAR_TENANT'),
      resource: { bucket: v('STS_SIDECAR_BUCKET'), prefix: v('STS_SIDECAR_PREFIX') },
      // As the sidecar normalises them: de-duplicated and sorted.
      actions: VARIABLES.STS_SIDECAR_ACTIONS.schema.parse(v('STS_SIDECAR_ACTIONS')),
      ttl_seconds: VARIABLES.STS_SIDECAR_TTL_SECONDS.schema.parse(v('STS_SIDECAR_TTL_SECONDS')),
    });
  });

  it('the credential files the READMEs promise are the ones the sidecar writes', () => {
    for (const readme of [join(CHART_DIR, 'README.md'), join(EXAMPLES_DIR, 'README.md')]) {
      const text = readText(readme);
      for (const f of CREDENTIAL_FILES) expect(text, `${readme} mentions ${f}`).toContain(f);
    }
  });
});

describe('chart templates agree with the sidecar config', () => {
  const helpers = readText(join(CHART_DIR, 'templates/_helpers.tpl'));
  const values = readYaml(join(CHART_DIR, 'values.yaml'));
  const v = isObject(values) ? values : {};
  const envBody = defineBody(helpers, 'sts-sidecar.env');
  const envNames = [...envBody.matchAll(/-\s+name:\s+(STS_SIDECAR_[A-Z0-9_]+)/g)].map((m) => m[1] ?? '');

  it('every STS_SIDECAR_* name in any chart template is a key of VARIABLES', () => {
    const all = [
      ...helpers.matchAll(/\b(STS_SIDECAR_[A-Z0-9_]+)/g),
      ...readText(join(CHART_DIR, 'README.md')).matchAll(/\b(STS_SIDECAR_[A-Z0-9_]+)/g),
    ].map((m) => m[1] ?? '');
    expect(all.length).toBeGreaterThan(10);
    expect(all.filter((n) => !isVariable(n))).toEqual([]);
  });

  it('sts-sidecar.env sets every required variable unconditionally, via required', () => {
    for (const name of REQUIRED_VARIABLES) {
      expect(envNames).toContain(name);
      const item = new RegExp(`- name: ${name}\\n\\s+value: \\{\\{ required `);
      expect(envBody, name).toMatch(item);
    }
    expect(envBody).toMatch(/roleArn is required when the backend is/);
    expect(new Set(envNames).size).toBe(envNames.length);
  });

  it('every VARIABLES key is either set by the chart or documented as an extraEnv variable', () => {
    const readme = readText(join(CHART_DIR, 'README.md'));
    const missing = Object.keys(VARIABLES).filter((n) => !envNames.includes(n) && !readme.includes(n));
    expect(missing).toEqual([]);
  });

  // Args, restartPolicy, ports, probe ports and paths of the rendered containers: helm-chart.test.ts.

  it('the hardened security context and the app env are written as the sidecar needs them', () => {
    const sc = stubYaml(defineBody(helpers, 'sts-sidecar.securityContext'));
    expect(sc).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(isObject(v.securityContext) && v.securityContext.runAsUser).toBe(65532);
    const appEnv = defineBody(helpers, 'sts-sidecar.appEnv');
    for (const [name, file] of Object.entries(APP_REFS)) {
      expect(appEnv).toMatch(
        new RegExp(`- name: ${name}\\n\\s+value: \\{\\{ printf "%s/${file}" \\$dir \\| quote \\}\\}`),
      );
    }
    const vols = stubYaml(defineBody(helpers, 'sts-sidecar.volumes'));
    expect(JSON.stringify(vols)).toContain('"medium":"Memory"');
    expect(JSON.stringify(vols)).toContain('"serviceAccountToken"');
  });

  it('chart defaults equal the sidecar defaults where the chart sets a variable anyway', () => {
    const credentials = isObject(v.credentials) ? v.credentials : {};
    expect(credentials.mountPath).toBe(VARIABLES.STS_SIDECAR_OUTPUT_DIR.default);
    expect(credentials.fileMode).toBe(VARIABLES.STS_SIDECAR_FILE_MODE.default);
    expect(String(v.ttlSeconds)).toBe(VARIABLES.STS_SIDECAR_TTL_SECONDS.default);
    expect(v.region).toBe(VARIABLES.STS_SIDECAR_STS_REGION.default);
    expect(v.port).toBe(HTTP_PORT);
    expect(v.logLevel).toBe(VARIABLES.STS_SIDECAR_LOG_LEVEL.default);
    expect(String(v.readyMarginSeconds)).toBe(VARIABLES.STS_SIDECAR_READY_MARGIN_SECONDS.default);
    expect(stringList(v.actions).join(',')).toBe(VARIABLES.STS_SIDECAR_ACTIONS.default);
    expect(`${String(defineBody(helpers, 'sts-sidecar.tokenDir')).trim()}/token`).toBe(
      VARIABLES.STS_SIDECAR_TOKEN_FILE.default,
    );
  });
});
