import path from 'node:path';
import { ConfigError } from '../errors.ts';
import {
  PER_LEASE_VARIABLES,
  leaseKey,
  namedLeaseSpecs,
  parseLeaseEntries,
  type LeaseEntry,
} from './leases.ts';
import { deliveryIssues, type EndpointAddress, type NotifySignal } from './delivery.ts';
import {
  REQUIRED_VARIABLES,
  VARIABLES,
  VARIABLE_NAMES,
  type Backend,
  type Config,
  type IdentityExchangeMode,
  type LeaseSpec,
  type VariableName,
} from './schema.ts';

const PREFIX = 'STS_SIDECAR_';

/** Reads the optional config file; injected so this module does no I/O of its own. */
export type ReadConfigFile = (path: string) => string;

/**
 * Builds the one Config from the environment (passed in, never read here) and, when
 * STS_SIDECAR_CONFIG_FILE is set, a JSON file of the same variable names. The environment wins.
 * Throws a ConfigError naming every bad variable; values are never echoed.
 */
export function loadConfig(
  env: Readonly<Record<string, string | undefined>>,
  readFile?: ReadConfigFile,
): Config {
  const issues: string[] = [];
  const raw = new Map<VariableName, string>();

  const fileName = env.STS_SIDECAR_CONFIG_FILE;
  let entries: LeaseEntry[] | undefined;
  if (fileName !== undefined && fileName !== '') {
    const file = readConfigFile(fileName, readFile, issues);
    for (const [key, value] of file.variables) raw.set(key, value);
    if (file.leases !== undefined) entries = parseLeaseEntries(file.leases, fileName, issues) ?? [];
  }
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith(PREFIX) || value === undefined) continue;
    if (!isVariableName(key)) {
      issues.push(`${key}: unknown variable${suggest(key)}`);
      continue;
    }
    raw.set(key, value);
  }

  const parsed = new Map<VariableName, unknown>();
  for (const name of VARIABLE_NAMES) {
    const spec = VARIABLES[name];
    const given = raw.get(name);
    const value = given === undefined || given === '' ? spec.default : given;
    if (value === undefined) {
      const perLease = entries !== undefined && (PER_LEASE_VARIABLES as readonly string[]).includes(name);
      if (REQUIRED_VARIABLES.includes(name) && !perLease) issues.push(`${name}: required but not set`);
      parsed.set(name, undefined);
      continue;
    }
    const result = spec.schema.safeParse(value);
    if (result.success) {
      parsed.set(name, result.data);
    } else {
      const message = result.error.issues[0]?.message ?? 'invalid value';
      // Some zod messages quote the input; a config value may be a secret-bearing path or URL.
      issues.push(`${name}: ${value.length > 0 && message.includes(value) ? 'invalid value' : message}`);
    }
  }
  if (entries !== undefined) {
    // Both at once is ambiguous (which lease would the variable be for?): each lease says its own.
    for (const name of PER_LEASE_VARIABLES) {
      if (raw.has(name) && raw.get(name) !== '')
        issues.push(`${name}: not allowed with leases in STS_SIDECAR_CONFIG_FILE (each lease sets its own)`);
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);

  const get = <T>(name: VariableName): T => parsed.get(name) as T;
  const stsEndpoint = get<string | undefined>('STS_SIDECAR_STS_ENDPOINT');
  const backend: Backend =
    get<Backend | undefined>('STS_SIDECAR_BACKEND') ?? (stsEndpoint ? 'generic' : 'aws');
  const roleArn = get<string | undefined>('STS_SIDECAR_ROLE_ARN');
  const ttlSeconds = get<number>('STS_SIDECAR_TTL_SECONDS');
  const minDuration = get<number>('STS_SIDECAR_STS_MIN_DURATION_SECONDS');
  const maxDuration = get<number>('STS_SIDECAR_STS_MAX_DURATION_SECONDS');
  const margin = get<number>('STS_SIDECAR_READY_MARGIN_SECONDS');
  const backoffInitial = get<number>('STS_SIDECAR_BACKOFF_INITIAL_SECONDS');
  const backoffMax = get<number>('STS_SIDECAR_BACKOFF_MAX_SECONDS');

  const sink = get<'directory' | 'secret'>('STS_SIDECAR_SINK');
  const outputDir = get<string>('STS_SIDECAR_OUTPUT_DIR');
  const leases: LeaseSpec[] =
    entries === undefined
      ? [
          {
            name: undefined,
            bucket: get<string>('STS_SIDECAR_BUCKET'),
            prefix: get<string>('STS_SIDECAR_PREFIX'),
            actions: Object.freeze(get<Config['actions']>('STS_SIDECAR_ACTIONS')),
            ttlSeconds,
            roleArn,
            sessionName: get<string | undefined>('STS_SIDECAR_SESSION_NAME'),
            outputDir,
            createOutputDir: false,
            secretName: get<string | undefined>('STS_SIDECAR_SECRET_NAME'),
          },
        ]
      : namedLeaseSpecs(entries, {
          outputDir,
          roleArn,
          sessionName: get<string | undefined>('STS_SIDECAR_SESSION_NAME'),
          secretName: sink === 'secret' ? get<string | undefined>('STS_SIDECAR_SECRET_NAME') : undefined,
        });
  if (minDuration > maxDuration) {
    issues.push('STS_SIDECAR_STS_MIN_DURATION_SECONDS: must not exceed STS_SIDECAR_STS_MAX_DURATION_SECONDS');
  }
  const dirs = new Map<string, string>();
  for (const lease of leases) {
    const ttlKey = leaseKey(lease, 'ttlSeconds', 'STS_SIDECAR_TTL_SECONDS');
    if (
      (backend === 'aws' || backend === 'ceph-rgw' || backend === 'seaweedfs') &&
      lease.roleArn === undefined
    ) {
      issues.push(
        `${leaseKey(lease, 'roleArn', 'STS_SIDECAR_ROLE_ARN')}: required when the backend is ${backend}`,
      );
    }
    if (lease.ttlSeconds < minDuration) {
      issues.push(`${ttlKey}: must be at least STS_SIDECAR_STS_MIN_DURATION_SECONDS (${minDuration})`);
    }
    if (margin >= Math.min(lease.ttlSeconds, maxDuration)) {
      issues.push(
        lease.name === undefined
          ? 'STS_SIDECAR_READY_MARGIN_SECONDS: must be shorter than the lease (STS_SIDECAR_TTL_SECONDS)'
          : `STS_SIDECAR_READY_MARGIN_SECONDS: must be shorter than every lease (${ttlKey})`,
      );
    }
    // Two leases in one directory would overwrite each other's set.
    const other = dirs.get(path.resolve(lease.outputDir));
    if (other !== undefined && sink === 'directory') {
      issues.push(
        `${leaseKey(lease, 'outputDir', 'STS_SIDECAR_OUTPUT_DIR')}: the same directory as lease ${other}`,
      );
    }
    dirs.set(path.resolve(lease.outputDir), lease.name ?? '');
    if (lease.secretName !== undefined && lease.secretName.length > 253) {
      issues.push(
        `STS_SIDECAR_SECRET_NAME: too long for the Secret of lease ${lease.name} (253 at most with -${lease.name})`,
      );
    }
  }
  if (get<number>('STS_SIDECAR_REFRESH_JITTER') >= get<number>('STS_SIDECAR_REFRESH_FRACTION')) {
    issues.push('STS_SIDECAR_REFRESH_JITTER: must be smaller than STS_SIDECAR_REFRESH_FRACTION');
  }
  if (sink === 'secret' && get<string | undefined>('STS_SIDECAR_SECRET_NAME') === undefined) {
    issues.push('STS_SIDECAR_SECRET_NAME: required when STS_SIDECAR_SINK is secret');
  }
  if (backoffInitial > backoffMax) {
    issues.push('STS_SIDECAR_BACKOFF_INITIAL_SECONDS: must not exceed STS_SIDECAR_BACKOFF_MAX_SECONDS');
  }
  const credentialsEndpoint = get<EndpointAddress | undefined>('STS_SIDECAR_CREDENTIALS_ENDPOINT');
  const credentialsEndpointTokenFile = get<string | undefined>('STS_SIDECAR_CREDENTIALS_ENDPOINT_TOKEN_FILE');
  const notifySignal = get<NotifySignal | undefined>('STS_SIDECAR_NOTIFY_SIGNAL');
  const notifyPidFile = get<string | undefined>('STS_SIDECAR_NOTIFY_PID_FILE');
  issues.push(
    ...deliveryIssues({
      endpoint: credentialsEndpoint,
      tokenFile: credentialsEndpointTokenFile,
      signal: notifySignal,
      pidFile: notifyPidFile,
    }),
  );
  const identityExchange = get<IdentityExchangeMode>('STS_SIDECAR_IDENTITY_EXCHANGE');
  const idpTokenUrl = get<string | undefined>('STS_SIDECAR_IDP_TOKEN_URL');
  if (identityExchange !== 'none' && idpTokenUrl === undefined) {
    issues.push(
      `STS_SIDECAR_IDP_TOKEN_URL: required when STS_SIDECAR_IDENTITY_EXCHANGE is ${identityExchange}`,
    );
  }
  if (issues.length > 0) throw new ConfigError(issues);

  const listenRaw = get<string>('STS_SIDECAR_LISTEN');
  const listen =
    listenRaw === 'off'
      ? undefined
      : {
          host: listenRaw.slice(0, listenRaw.lastIndexOf(':')) || '0.0.0.0',
          port: Number(listenRaw.slice(listenRaw.lastIndexOf(':') + 1)),
        };
  if (listen && listen.port > 65535)
    throw new ConfigError(['STS_SIDECAR_LISTEN: port must be at most 65535']);

  return Object.freeze({
    tokenFile: get<string>('STS_SIDECAR_TOKEN_FILE'),
    tokenAudience: get<string | undefined>('STS_SIDECAR_TOKEN_AUDIENCE'),
    tenant: get<string>('STS_SIDECAR_TENANT'),
    bucket: leases[0]!.bucket,
    prefix: leases[0]!.prefix,
    actions: leases[0]!.actions,
    ttlSeconds: leases[0]!.ttlSeconds,
    flexAuthUrl: get<string>('STS_SIDECAR_FLEX_AUTH_URL'),
    stsEndpoint,
    stsRegion: get<string>('STS_SIDECAR_STS_REGION'),
    roleArn: leases[0]!.roleArn,
    sessionName: leases[0]!.sessionName,
    backend,
    stsMinDurationSeconds: minDuration,
    stsMaxDurationSeconds: maxDuration,
    outputDir,
    fileMode: get<number>('STS_SIDECAR_FILE_MODE'),
    caFile: get<string | undefined>('STS_SIDECAR_CA_FILE'),
    listen: listen && Object.freeze(listen),
    logLevel: get<Config['logLevel']>('STS_SIDECAR_LOG_LEVEL'),
    wipeOnExit: get<boolean>('STS_SIDECAR_WIPE_ON_EXIT'),
    refreshFraction: get<number>('STS_SIDECAR_REFRESH_FRACTION'),
    refreshJitter: get<number>('STS_SIDECAR_REFRESH_JITTER'),
    readyMarginSeconds: margin,
    backoffInitialSeconds: backoffInitial,
    backoffMaxSeconds: backoffMax,
    requestTimeoutSeconds: get<number>('STS_SIDECAR_REQUEST_TIMEOUT_SECONDS'),
    configFile: get<string | undefined>('STS_SIDECAR_CONFIG_FILE'),
    credentialsEndpoint: credentialsEndpoint && Object.freeze(credentialsEndpoint),
    credentialsEndpointTokenFile,
    notifySignal,
    notifyPidFile,
    notifyUrl: get<string | undefined>('STS_SIDECAR_NOTIFY_URL'),
    notifyCommand: get<string[] | undefined>('STS_SIDECAR_NOTIFY_COMMAND'),
    identityExchange,
    idpTokenUrl,
    idpClientId: get<string | undefined>('STS_SIDECAR_IDP_CLIENT_ID'),
    idpAudience: get<string | undefined>('STS_SIDECAR_IDP_AUDIENCE'),
    idpScope: get<string | undefined>('STS_SIDECAR_IDP_SCOPE'),
    sink,
    secret:
      sink === 'secret'
        ? Object.freeze({
            name: get<string>('STS_SIDECAR_SECRET_NAME'),
            namespace: get<string | undefined>('STS_SIDECAR_SECRET_NAMESPACE'),
            keys: Object.freeze(get<[string, string, string, string]>('STS_SIDECAR_SECRET_KEYS')),
            apiUrl: get<string>('STS_SIDECAR_KUBE_API_URL'),
            tokenFile: get<string>('STS_SIDECAR_KUBE_TOKEN_FILE'),
            caFile: get<string>('STS_SIDECAR_KUBE_CA_FILE'),
          })
        : undefined,
    leases: Object.freeze(leases),
  });
}

/** The effective configuration as check-config prints it: variable name -> value, secrets masked. */
export function describeConfig(
  config: Config,
): Record<string, string | number | boolean | string[] | null | Record<string, unknown>[]> {
  const named = config.leases[0]?.name !== undefined;
  const perLease = (value: string | number | string[]) => (named ? null : value);
  return {
    STS_SIDECAR_TOKEN_FILE: config.tokenFile,
    STS_SIDECAR_TOKEN_AUDIENCE: config.tokenAudience ?? null,
    STS_SIDECAR_TENANT: config.tenant,
    STS_SIDECAR_BUCKET: perLease(config.bucket),
    STS_SIDECAR_PREFIX: perLease(config.prefix),
    STS_SIDECAR_ACTIONS: perLease([...config.actions]),
    STS_SIDECAR_TTL_SECONDS: perLease(config.ttlSeconds),
    STS_SIDECAR_FLEX_AUTH_URL: redactUrl(config.flexAuthUrl),
    STS_SIDECAR_STS_ENDPOINT: config.stsEndpoint === undefined ? null : redactUrl(config.stsEndpoint),
    STS_SIDECAR_STS_REGION: config.stsRegion,
    // With named leases these are defaults; each lease's own is listed under leases.
    STS_SIDECAR_ROLE_ARN: named ? null : (config.roleArn ?? null),
    STS_SIDECAR_SESSION_NAME: named ? null : (config.sessionName ?? null),
    STS_SIDECAR_BACKEND: config.backend,
    STS_SIDECAR_STS_MIN_DURATION_SECONDS: config.stsMinDurationSeconds,
    STS_SIDECAR_STS_MAX_DURATION_SECONDS: config.stsMaxDurationSeconds,
    STS_SIDECAR_OUTPUT_DIR: config.outputDir,
    STS_SIDECAR_FILE_MODE: '0' + config.fileMode.toString(8),
    STS_SIDECAR_CA_FILE: config.caFile ?? null,
    STS_SIDECAR_LISTEN: config.listen ? `${config.listen.host}:${config.listen.port}` : 'off',
    STS_SIDECAR_LOG_LEVEL: config.logLevel,
    STS_SIDECAR_WIPE_ON_EXIT: config.wipeOnExit,
    STS_SIDECAR_REFRESH_FRACTION: config.refreshFraction,
    STS_SIDECAR_REFRESH_JITTER: config.refreshJitter,
    STS_SIDECAR_READY_MARGIN_SECONDS: config.readyMarginSeconds,
    STS_SIDECAR_BACKOFF_INITIAL_SECONDS: config.backoffInitialSeconds,
    STS_SIDECAR_BACKOFF_MAX_SECONDS: config.backoffMaxSeconds,
    STS_SIDECAR_REQUEST_TIMEOUT_SECONDS: config.requestTimeoutSeconds,
    STS_SIDECAR_CONFIG_FILE: config.configFile ?? null,
    STS_SIDECAR_CREDENTIALS_ENDPOINT: config.credentialsEndpoint
      ? formatEndpointAddress(config.credentialsEndpoint)
      : 'off',
    STS_SIDECAR_CREDENTIALS_ENDPOINT_TOKEN_FILE: config.credentialsEndpointTokenFile ?? null,
    STS_SIDECAR_NOTIFY_SIGNAL: config.notifySignal ?? null,
    STS_SIDECAR_NOTIFY_PID_FILE: config.notifyPidFile ?? null,
    STS_SIDECAR_NOTIFY_URL: config.notifyUrl === undefined ? null : redactUrl(config.notifyUrl),
    STS_SIDECAR_NOTIFY_COMMAND: config.notifyCommand === undefined ? null : [...config.notifyCommand],
    STS_SIDECAR_IDENTITY_EXCHANGE: config.identityExchange,
    STS_SIDECAR_IDP_TOKEN_URL: config.idpTokenUrl === undefined ? null : redactUrl(config.idpTokenUrl),
    STS_SIDECAR_IDP_CLIENT_ID: config.idpClientId ?? null,
    STS_SIDECAR_IDP_AUDIENCE: config.idpAudience ?? null,
    STS_SIDECAR_IDP_SCOPE: config.idpScope ?? null,
    STS_SIDECAR_SINK: config.sink,
    STS_SIDECAR_SECRET_NAME: config.secret?.name ?? null,
    STS_SIDECAR_SECRET_NAMESPACE: config.secret?.namespace ?? null,
    STS_SIDECAR_SECRET_KEYS: config.secret ? [...config.secret.keys] : null,
    STS_SIDECAR_KUBE_API_URL: config.secret ? redactUrl(config.secret.apiUrl) : null,
    STS_SIDECAR_KUBE_TOKEN_FILE: config.secret?.tokenFile ?? null,
    STS_SIDECAR_KUBE_CA_FILE: config.secret?.caFile ?? null,
    ...(named
      ? {
          leases: config.leases.map((l) => ({
            name: l.name,
            bucket: l.bucket,
            prefix: l.prefix,
            actions: [...l.actions],
            ttlSeconds: l.ttlSeconds,
            roleArn: l.roleArn ?? null,
            sessionName: l.sessionName ?? null,
            ...(config.sink === 'secret' ? { secret: l.secretName } : { outputDir: l.outputDir }),
          })),
        }
      : {}),
  };
}

/** `127.0.0.1:port` or `[::1]:port`. */
export function formatEndpointAddress(a: EndpointAddress): string {
  return a.host === '::1' ? `[::1]:${a.port}` : `${a.host}:${a.port}`;
}

/** URLs may carry basic-auth credentials or signed query strings; show neither. */
function redactUrl(url: string): string {
  const u = new URL(url);
  if (u.username || u.password) {
    u.username = 'REDACTED';
    u.password = '';
  }
  if (u.search) u.search = '?REDACTED';
  return u.toString();
}

function isVariableName(key: string): key is VariableName {
  return Object.hasOwn(VARIABLES, key);
}

function suggest(key: string): string {
  const close = VARIABLE_NAMES.find((n) => distance(n, key) <= 2);
  return close ? ` (did you mean ${close}?)` : '';
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** The config file: STS_SIDECAR_* variables, and the optional `leases` list (parsed by the caller). */
interface ConfigFile {
  readonly variables: [VariableName, string][];
  readonly leases: unknown;
}

function readConfigFile(file: string, readFile: ReadConfigFile | undefined, issues: string[]): ConfigFile {
  const none = { variables: [], leases: undefined };
  if (!readFile) return none;
  let text: string;
  try {
    text = readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    issues.push(`STS_SIDECAR_CONFIG_FILE: cannot read ${file} (${code})`);
    return none;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    issues.push(`STS_SIDECAR_CONFIG_FILE: ${file} is not valid JSON`);
    return none;
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    issues.push(`STS_SIDECAR_CONFIG_FILE: ${file} must hold a JSON object of STS_SIDECAR_* keys`);
    return none;
  }
  const out: [VariableName, string][] = [];
  let leases: unknown;
  for (const [key, value] of Object.entries(data)) {
    if (key === 'leases') {
      leases = value;
    } else if (!isVariableName(key) || key === 'STS_SIDECAR_CONFIG_FILE') {
      issues.push(`${key}: unknown key in ${file}${suggest(key)}`);
    } else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      out.push([key, String(value)]);
    } else {
      issues.push(`${key}: must be a string, number or boolean in ${file}`);
    }
  }
  return { variables: out, leases };
}
