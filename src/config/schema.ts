import * as z from 'zod';
import {
  NOTIFY_SIGNALS,
  hasNoUserinfo,
  NO_USERINFO_MESSAGE,
  commandArgvString,
  credentialsEndpointString,
  type EndpointAddress,
  type NotifySignal,
} from './delivery.ts';

/** The S3 action groups flex-auth can grant. */
export const ACTION_GROUPS = ['read', 'write', 'list', 'delete'] as const;
export type ActionGroup = (typeof ACTION_GROUPS)[number];

/** STS flavours whose quirks the sidecar knows (see docs/backends.md). */
export const BACKENDS = ['aws', 'ceph-rgw', 'minio', 'generic', 'seaweedfs'] as const;
export type Backend = (typeof BACKENDS)[number];

/** How the projected token is traded for an IAM Profile token before flex-auth (docs/identity.md). */
export const IDENTITY_EXCHANGES = ['none', 'client-assertion', 'token-exchange'] as const;
export type IdentityExchangeMode = (typeof IDENTITY_EXCHANGES)[number];

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const boolString = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const intString = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const fractionString = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d*\.?\d+$/, 'must be a decimal number')
    .transform(Number)
    .pipe(z.number().min(min).max(max));

const httpUrl = z
  .string()
  .url('must be an absolute URL')
  .refine((u) => /^https?:\/\//.test(u), 'must be an http:// or https:// URL');

const listenString = z
  .string()
  .refine((v) => v === 'off' || /^[^\s:]*:\d{1,5}$/.test(v), 'must be host:port or off');

const fileMode = z
  .string()
  .regex(/^0?[0-7]{3}$/, 'must be an octal mode such as 0440')
  .transform((v) => parseInt(v, 8))
  .refine((m) => (m & 0o400) !== 0, 'must leave the owner able to read')
  .refine((m) => (m & 0o002) === 0, 'must not be world-writable');

export const actionsString = z
  .string()
  .transform((v) =>
    v
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0),
  )
  .pipe(z.array(z.enum(ACTION_GROUPS)).min(1, 'must name at least one of read, write, list, delete'))
  .transform((a) => [...new Set(a)].sort() as ActionGroup[]);

// Bucket names: the S3 rules, so a typo fails at start and not at the first exchange.
export const bucketName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid S3 bucket name');
export const prefix = z
  .string()
  .refine((p) => !p.startsWith('/'), 'must not start with /')
  .refine((p) => !/[*?\s"]/.test(p), 'must not contain *, ?, quotes or white space');

export const roleArn = z.string().regex(/^arn:[^\s]+$/, 'must be an ARN');
export const sessionName = z.string().regex(/^[\w+=,.@-]{2,64}$/, 'must match [\\w+=,.@-]{2,64}');

// Secret sink: a DNS-1123 name and four distinct Secret data keys.
const kubeName = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'must be a Kubernetes object name (lowercase DNS-1123)');
const secretKeys = z
  .string()
  .transform((v) => v.split(',').map((s) => s.trim()))
  .pipe(
    z
      .array(
        z.string().regex(/^[-._a-zA-Z0-9]{1,253}$/, 'each key must be a valid Secret key ([-._a-zA-Z0-9])'),
      )
      .length(4, 'must name exactly four keys: access key id, secret key, session token, expiration')
      .refine((a) => new Set(a).size === 4, 'the four keys must differ'),
  );
// A namespace is a DNS label: at most 63 characters, no dots.
const kubeNamespace = z
  .string()
  .regex(
    /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/,
    'must be a namespace name (DNS label: lowercase, 63 characters, no dots)',
  );
// The pod's service-account token goes out with every call: never over cleartext.
const httpsUrl = z
  .string()
  .url('must be an absolute URL')
  .refine((u) => /^https:\/\//.test(u), 'must be an https:// URL (the service-account token is sent to it)');
export const absolutePath = z
  .string()
  .min(1)
  .refine((p) => p.startsWith('/'), 'must be an absolute path');

/**
 * One entry per environment variable. This table is the interface: config parsing, `check-config`,
 * `--help`, the README table, the Helm chart and the examples are all checked against it.
 */
export const VARIABLES = {
  STS_SIDECAR_TOKEN_FILE: {
    schema: z.string().min(1),
    default: '/var/run/secrets/sts-sidecar/token',
    help: 'Projected service-account token file; re-read at every exchange.',
  },
  STS_SIDECAR_TOKEN_AUDIENCE: {
    schema: z
      .string()
      .regex(/^[^\s\p{Cc}]+$/u, 'must be a non-empty string without spaces or control characters')
      .optional(),
    default: undefined,
    help: "When set, the token's aud must contain it (local pre-check).",
  },
  STS_SIDECAR_TENANT: {
    schema: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be 1-63 letters, digits, . _ -'),
    default: undefined,
    help: 'Tenant asked for; a token tenant claim must equal it. Required.',
  },
  STS_SIDECAR_BUCKET: {
    schema: bucketName,
    default: undefined,
    help: 'Bucket the credentials are for. Required.',
  },
  STS_SIDECAR_PREFIX: {
    schema: prefix,
    default: '',
    help: 'Key prefix inside the bucket; empty means the whole bucket.',
  },
  STS_SIDECAR_ACTIONS: {
    schema: actionsString,
    default: 'read,list',
    help: 'Comma-separated action groups asked for: read, write, list, delete.',
  },
  STS_SIDECAR_TTL_SECONDS: {
    schema: intString(60, 43200),
    default: '3600',
    help: 'Lease lifetime asked for; flex-auth and the STS maximum may lower it.',
  },
  STS_SIDECAR_FLEX_AUTH_URL: {
    schema: httpUrl,
    default: undefined,
    help: 'flex-auth decision endpoint (POST). Required.',
  },
  STS_SIDECAR_STS_ENDPOINT: {
    schema: httpUrl.optional(),
    default: undefined,
    help: 'STS endpoint; unset means AWS STS for the region.',
  },
  STS_SIDECAR_STS_REGION: {
    schema: z.string().regex(/^[a-z0-9-]{2,32}$/, 'must be a region name such as us-east-1'),
    default: 'us-east-1',
    help: 'Region used to sign STS requests.',
  },
  STS_SIDECAR_ROLE_ARN: {
    schema: roleArn.optional(),
    default: undefined,
    help: 'RoleArn sent to AssumeRoleWithWebIdentity; unset means not sent (MinIO claim mode).',
  },
  STS_SIDECAR_SESSION_NAME: {
    schema: sessionName.optional(),
    default: undefined,
    help: 'RoleSessionName; unset means derived from the token sub.',
  },
  STS_SIDECAR_BACKEND: {
    schema: z.enum(BACKENDS).optional(),
    default: undefined,
    help: 'STS flavour: aws, ceph-rgw, minio, seaweedfs, generic; unset: aws without an endpoint, else generic.',
  },
  STS_SIDECAR_STS_MIN_DURATION_SECONDS: {
    schema: intString(1, 43200),
    default: '900',
    help: 'Smallest DurationSeconds the STS accepts; a grant below it fails closed.',
  },
  STS_SIDECAR_STS_MAX_DURATION_SECONDS: {
    schema: intString(60, 43200),
    default: '3600',
    help: 'Largest DurationSeconds the role allows; longer grants are stepped down to it.',
  },
  STS_SIDECAR_OUTPUT_DIR: {
    schema: z.string().min(1),
    default: '/var/run/sts-sidecar/credentials',
    help: 'Directory the credential set is written to (atomic ..data swap).',
  },
  STS_SIDECAR_FILE_MODE: {
    schema: fileMode,
    default: '0440',
    help: 'Mode of the credential files, applied on every write.',
  },
  STS_SIDECAR_CA_FILE: {
    schema: z.string().min(1).optional(),
    default: undefined,
    help: 'Extra PEM CA certificates trusted for flex-auth and the STS.',
  },
  STS_SIDECAR_LISTEN: {
    schema: listenString,
    default: '0.0.0.0:8081',
    help: 'Address of /healthz, /readyz and /metrics; off disables.',
  },
  STS_SIDECAR_LOG_LEVEL: { schema: z.enum(LOG_LEVELS), default: 'info', help: 'pino log level.' },
  STS_SIDECAR_WIPE_ON_EXIT: {
    schema: boolString,
    default: 'false',
    help: 'Remove the credential set when the sidecar stops.',
  },
  STS_SIDECAR_REFRESH_FRACTION: {
    schema: fractionString(0.1, 0.9),
    default: '0.5',
    help: 'Refresh once this fraction of the lease has passed (before jitter).',
  },
  STS_SIDECAR_REFRESH_JITTER: {
    schema: fractionString(0, 0.5),
    default: '0.1',
    help: 'Up to this fraction of the lease is taken off the refresh time at random.',
  },
  STS_SIDECAR_READY_MARGIN_SECONDS: {
    schema: intString(0, 3600),
    default: '360',
    help: 'Ready only while the set on disk has more than this left (AWS SDKs treat <5 min as expired).',
  },
  STS_SIDECAR_BACKOFF_INITIAL_SECONDS: {
    schema: fractionString(0.01, 600),
    default: '1',
    help: 'First retry delay cap after a failure (full jitter).',
  },
  STS_SIDECAR_BACKOFF_MAX_SECONDS: {
    schema: fractionString(0.1, 3600),
    default: '60',
    help: 'Largest retry delay cap after repeated failures.',
  },
  STS_SIDECAR_REQUEST_TIMEOUT_SECONDS: {
    schema: fractionString(0.1, 300),
    default: '10',
    help: 'Deadline of each flex-auth and STS call.',
  },
  STS_SIDECAR_CONFIG_FILE: {
    schema: z.string().min(1).optional(),
    default: undefined,
    help: 'Optional JSON file of these variables (and of named leases); the environment wins over it.',
  },
  STS_SIDECAR_CREDENTIALS_ENDPOINT: {
    schema: credentialsEndpointString,
    default: 'off',
    help: 'Container-credentials endpoint (/v1/credentials) on 127.0.0.1:port or [::1]:port; off disables.',
  },
  STS_SIDECAR_CREDENTIALS_ENDPOINT_TOKEN_FILE: {
    schema: z.string().min(1).optional(),
    default: undefined,
    help: 'Token callers send in Authorization; read if the file exists, else generated and written there.',
  },
  STS_SIDECAR_NOTIFY_SIGNAL: {
    schema: z.enum(NOTIFY_SIGNALS).optional(),
    default: undefined,
    help: 'Signal sent to the process in STS_SIDECAR_NOTIFY_PID_FILE after every new set and removal.',
  },
  STS_SIDECAR_NOTIFY_PID_FILE: {
    schema: z.string().min(1).optional(),
    default: undefined,
    help: 'File the app writes its PID to (needs shareProcessNamespace); read at every notification.',
  },
  STS_SIDECAR_NOTIFY_URL: {
    schema: httpUrl.refine(hasNoUserinfo, NO_USERINFO_MESSAGE).optional(),
    default: undefined,
    help: 'URL POSTed the lease event (no secrets) after every new set and removal.',
  },
  STS_SIDECAR_NOTIFY_COMMAND: {
    schema: commandArgvString.optional(),
    default: undefined,
    help: 'JSON argv run without a shell after every new set and removal; the event is on stdin.',
  },
  STS_SIDECAR_IDENTITY_EXCHANGE: {
    schema: z.enum(IDENTITY_EXCHANGES),
    default: 'none',
    help: 'Trade the token for an IAM Profile token first: none, client-assertion or token-exchange.',
  },
  STS_SIDECAR_IDP_TOKEN_URL: {
    schema: httpUrl.optional(),
    default: undefined,
    help: "Identity provider's token endpoint; required when the identity exchange is on.",
  },
  STS_SIDECAR_IDP_CLIENT_ID: {
    schema: z
      .string()
      .regex(/^[\x21-\x7e]{1,256}$/, 'must be 1-256 printable characters without spaces')
      .optional(),
    default: undefined,
    help: 'client_id sent to the identity provider; unset means not sent.',
  },
  STS_SIDECAR_IDP_AUDIENCE: {
    schema: z
      .string()
      .regex(/^[\x21-\x7e]{1,512}$/, 'must be 1-512 printable characters without spaces')
      .optional(),
    default: undefined,
    help: 'audience parameter sent to the identity provider; unset means not sent.',
  },
  STS_SIDECAR_IDP_SCOPE: {
    schema: z
      .string()
      .regex(/^[\x21-\x7e]+( [\x21-\x7e]+)*$/, 'must be space-separated scope names')
      .optional(),
    default: undefined,
    help: 'scope parameter sent to the identity provider; unset means not sent.',
  },
  STS_SIDECAR_SINK: {
    schema: z.enum(['directory', 'secret']),
    default: 'directory',
    help: 'Where sets go: directory (STS_SIDECAR_OUTPUT_DIR) or secret (one Kubernetes Secret).',
  },
  STS_SIDECAR_SECRET_NAME: {
    schema: kubeName.optional(),
    default: undefined,
    help: 'Secret the set is written into (sink secret; it must exist). Required with sink secret.',
  },
  STS_SIDECAR_SECRET_NAMESPACE: {
    schema: kubeNamespace.optional(),
    default: undefined,
    help: "Namespace of that Secret; unset means the pod's own (service-account namespace file).",
  },
  STS_SIDECAR_SECRET_KEYS: {
    schema: secretKeys,
    default: 'ACCESS_KEY_ID,ACCESS_SECRET_KEY,ACCESS_SESSION_TOKEN,EXPIRATION',
    help: 'Secret keys for access key id, secret key, session token and expiration, in that order.',
  },
  STS_SIDECAR_KUBE_API_URL: {
    schema: httpsUrl,
    default: 'https://kubernetes.default.svc',
    help: 'Kubernetes API server the secret sink talks to.',
  },
  STS_SIDECAR_KUBE_TOKEN_FILE: {
    schema: absolutePath,
    default: '/var/run/secrets/kubernetes.io/serviceaccount/token',
    help: "The pod's service-account token for the API server (secret sink); re-read at every call.",
  },
  STS_SIDECAR_KUBE_CA_FILE: {
    schema: absolutePath,
    default: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
    help: "CA bundle of the API server (secret sink): the cluster's, trusted instead of the public roots.",
  },
} as const;

export type VariableName = keyof typeof VARIABLES;
export const VARIABLE_NAMES = Object.keys(VARIABLES) as VariableName[];

/** Variables whose value is never printed, not even by check-config. */
export const SECRET_VARIABLES: ReadonlySet<VariableName> = new Set<VariableName>([]);

/** Variables that must be set (no default). */
export const REQUIRED_VARIABLES: readonly VariableName[] = [
  'STS_SIDECAR_TENANT',
  'STS_SIDECAR_BUCKET',
  'STS_SIDECAR_FLEX_AUTH_URL',
];

/** What one lease asks for and where its set goes; the environment-only lease has no name. */
export interface LeaseSpec {
  /** Undefined only for the environment-only single lease (its events, files and metrics stay as they were). */
  readonly name: string | undefined;
  readonly bucket: string;
  readonly prefix: string;
  readonly actions: readonly ActionGroup[];
  readonly ttlSeconds: number;
  readonly roleArn: string | undefined;
  readonly sessionName: string | undefined;
  readonly outputDir: string;
  /** True when the directory is the default `<STS_SIDECAR_OUTPUT_DIR>/<name>/`, which the sidecar creates. */
  readonly createOutputDir: boolean;
  /** Secret sink only: the Secret this lease's set goes into. */
  readonly secretName: string | undefined;
}

/** The parsed, validated, frozen configuration the whole process runs on. */
export interface Config {
  /**
   * Every lease this sidecar keeps, in config order: the environment-only lease (no name), or the named
   * leases of the config file. The lease fields below (bucket to sessionName) are the first lease's.
   */
  readonly leases: readonly LeaseSpec[];
  readonly tokenFile: string;
  readonly tokenAudience: string | undefined;
  readonly tenant: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly actions: readonly ActionGroup[];
  readonly ttlSeconds: number;
  readonly flexAuthUrl: string;
  readonly stsEndpoint: string | undefined;
  readonly stsRegion: string;
  readonly roleArn: string | undefined;
  readonly sessionName: string | undefined;
  readonly backend: Backend;
  readonly stsMinDurationSeconds: number;
  readonly stsMaxDurationSeconds: number;
  readonly outputDir: string;
  readonly fileMode: number;
  readonly caFile: string | undefined;
  readonly listen: { readonly host: string; readonly port: number } | undefined;
  readonly logLevel: (typeof LOG_LEVELS)[number];
  readonly wipeOnExit: boolean;
  readonly refreshFraction: number;
  readonly refreshJitter: number;
  readonly readyMarginSeconds: number;
  readonly backoffInitialSeconds: number;
  readonly backoffMaxSeconds: number;
  readonly requestTimeoutSeconds: number;
  readonly configFile: string | undefined;
  readonly credentialsEndpoint: EndpointAddress | undefined;
  readonly credentialsEndpointTokenFile: string | undefined;
  readonly notifySignal: NotifySignal | undefined;
  readonly notifyPidFile: string | undefined;
  readonly notifyUrl: string | undefined;
  readonly notifyCommand: readonly string[] | undefined;
  readonly identityExchange: IdentityExchangeMode;
  readonly idpTokenUrl: string | undefined;
  readonly idpClientId: string | undefined;
  readonly idpAudience: string | undefined;
  readonly idpScope: string | undefined;
  readonly sink: 'directory' | 'secret';
  /** Set exactly when sink is secret. */
  readonly secret:
    | {
        readonly name: string;
        readonly namespace: string | undefined;
        readonly keys: readonly [string, string, string, string];
        readonly apiUrl: string;
        readonly tokenFile: string;
        readonly caFile: string;
      }
    | undefined;
}
