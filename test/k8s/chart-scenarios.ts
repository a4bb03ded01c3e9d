// The values combinations the charts are rendered with (by helm) and admitted with (by the API server).
// Append a scenario for every new mode or value group; each one is linted, rendered, checked and admitted.
import type { JsonObject } from './support.ts';

export interface ChartScenario {
  /** Short name: used in test titles, file and namespace names. */
  readonly name: string;
  /** Which chart: example-app renders workloads; sts-sidecar alone renders nothing. */
  readonly chart: 'example-app' | 'sts-sidecar';
  /** Values on top of the chart's values.yaml (example-app: the sidecar's under stsSidecar). */
  readonly values: JsonObject;
  /** The mode the sidecar runs in (what the pod spec must show). */
  readonly mode: 'native' | 'legacy';
}

export const CHART_SCENARIOS: readonly ChartScenario[] = [
  { name: 'example-defaults', chart: 'example-app', values: {}, mode: 'native' },
  { name: 'legacy', chart: 'example-app', values: { stsSidecar: { mode: 'legacy' } }, mode: 'legacy' },
  {
    name: 'aws-config',
    chart: 'example-app',
    values: {
      stsSidecar: { app: { awsConfig: { enabled: true, s3EndpointUrl: 'https://rgw.storage.svc:7480' } } },
    },
    mode: 'native',
  },
  {
    name: 'legacy-aws-config-ca-secret',
    chart: 'example-app',
    values: {
      stsSidecar: {
        mode: 'legacy',
        ca: { configMap: '', secret: 'internal-ca', key: 'bundle.pem' },
        app: { artifactStoreEnv: false, awsConfig: { enabled: true } },
      },
    },
    mode: 'legacy',
  },
  {
    name: 'aws-no-ca',
    chart: 'example-app',
    values: {
      serviceAccount: { create: false, name: 'artifact-store' },
      stsSidecar: {
        backend: '',
        stsEndpoint: '',
        ca: { configMap: '' },
        region: 'eu-west-1',
        roleArn: 'arn:aws:iam::123456789012:role/artifact-store',
        sessionName: 'artifact-store',
      },
    },
    mode: 'native',
  },
  {
    name: 'minio-everything-set',
    chart: 'example-app',
    values: {
      replicaCount: 2,
      stsSidecar: {
        backend: 'minio',
        roleArn: '',
        prefix: '',
        actions: ['read', 'write', 'list', 'delete'],
        ttlSeconds: 900,
        image: { digest: `sha256:${'a'.repeat(64)}`, pullPolicy: 'Always' },
        containerName: 'creds',
        credentials: { mountPath: '/creds', sizeLimit: '2Mi', fileMode: '0400', wipeOnExit: true },
        token: { expirationSeconds: 600, verifyAudience: false },
        port: 9091,
        logLevel: 'debug',
        readyMarginSeconds: 120,
        securityContext: { runAsUser: 1000, runAsGroup: 1000, fsGroup: 2000 },
        extraEnv: [
          { name: 'STS_SIDECAR_REFRESH_FRACTION', value: '0.6' },
          { name: 'STS_SIDECAR_REQUEST_TIMEOUT_SECONDS', value: '5' },
        ],
      },
    },
    mode: 'native',
  },
  {
    name: 'secret-sink',
    chart: 'example-app',
    values: { stsSidecar: { sink: { type: 'secret' } } },
    mode: 'native',
  },
  {
    name: 'legacy-secret-sink-named',
    chart: 'example-app',
    values: {
      stsSidecar: {
        mode: 'legacy',
        sink: { type: 'secret', secret: { name: 'cnpg-backup-s3', keys: ['AK', 'SK', 'ST', 'EXP'] } },
      },
    },
    mode: 'legacy',
  },
  {
    name: 'delivery-endpoint-notify',
    chart: 'example-app',
    values: {
      stsSidecar: {
        credentialsEndpoint: { enabled: true, port: 9912 },
        notify: {
          signal: 'SIGHUP',
          pidFile: '/var/run/app/app.pid',
          url: 'http://127.0.0.1:8080/rotated',
          command: ['/bin/true'],
        },
      },
    },
    mode: 'native',
  },
  {
    name: 'legacy-delivery-endpoint-secret-sink',
    chart: 'example-app',
    values: {
      stsSidecar: { mode: 'legacy', credentialsEndpoint: { enabled: true }, sink: { type: 'secret' } },
    },
    mode: 'legacy',
  },
  {
    name: 'identity-client-assertion',
    chart: 'example-app',
    values: {
      stsSidecar: {
        identity: {
          exchange: 'client-assertion',
          tokenUrl: 'https://keycloak.auth.svc/realms/platform/protocol/openid-connect/token',
          tokenAudience: 'https://keycloak.auth.svc/realms/platform',
          clientId: 'artifact-store',
          scope: 'openid',
        },
      },
    },
    mode: 'native',
  },
  {
    name: 'legacy-identity-token-exchange',
    chart: 'example-app',
    values: {
      stsSidecar: {
        mode: 'legacy',
        identity: {
          exchange: 'token-exchange',
          tokenUrl: 'https://idp.example.com/oauth2/token',
          tokenAudience: 'https://idp.example.com',
          audience: 'sts.example.com',
        },
      },
    },
    mode: 'legacy',
  },
  {
    name: 'library-alone',
    chart: 'sts-sidecar',
    values: {
      tenant: 'team-a',
      bucket: 'artifacts',
      flexAuthUrl: 'https://flex-auth.auth.svc/v1/decisions',
      roleArn: 'arn:aws:iam:::role/x',
      audience: 'sts.example.com',
    },
    mode: 'native',
  },
];

/** Values helm must refuse, with the message it must give (template `fail`/`required` or the schema). */
export const REFUSED_VALUES: ReadonlyArray<{ name: string; values: JsonObject; message: RegExp }> = [
  { name: 'tenant missing', values: { stsSidecar: { tenant: '' } }, message: /tenant is required/ },
  {
    name: 'flexAuthUrl missing',
    values: { stsSidecar: { flexAuthUrl: '' } },
    message: /flexAuthUrl is required/,
  },
  {
    name: 'ceph-rgw without roleArn',
    values: { stsSidecar: { roleArn: '' } },
    message: /roleArn is required when the backend is ceph-rgw/,
  },
  {
    name: 'CA from a ConfigMap and a Secret',
    values: { stsSidecar: { ca: { configMap: 'a', secret: 'b' } } },
    message: /set ca.configMap or ca.secret, not both/,
  },
  { name: 'ttlSeconds as a string', values: { stsSidecar: { ttlSeconds: '3600' } }, message: /ttlSeconds/ },
  { name: 'unknown mode', values: { stsSidecar: { mode: 'sidecar' } }, message: /mode/ },
  { name: 'unknown key (typo)', values: { stsSidecar: { tennant: 'team-a' } }, message: /tennant/ },
  {
    name: 'a secret sink with three keys',
    values: { stsSidecar: { sink: { type: 'secret', secret: { keys: ['A', 'B', 'C'] } } } },
    message: /keys/,
  },
];
