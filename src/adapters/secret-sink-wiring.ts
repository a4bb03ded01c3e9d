import { readFile } from 'node:fs/promises';
import type { Config } from '../config/schema.ts';
import { SidecarError } from '../errors.ts';
import { KubernetesSecretSink } from './credential-secret.ts';
import { createHttpTransport } from './http-transport.ts';

/** Secret objects are small; a cap stops a broken server from filling memory (the API limit is 1 MiB). */
const MAX_SECRET_RESPONSE_BYTES = 2 * 1024 * 1024;

/**
 * The Secret sink as a pod runs it: the in-cluster CA (trusted instead of the public roots, as every
 * Kubernetes client does), the namespace from the service-account mount unless configured, and the pod's
 * service-account token re-read for every call (the kubelet rotates it).
 */
export function createSecretSink(
  secret: NonNullable<Config['secret']>,
  deps: { readTextFile: (path: string) => string; timeoutMs: number },
): KubernetesSecretSink {
  const read = (path: string, variable: string, what: string): string => {
    try {
      return deps.readTextFile(path);
    } catch (err) {
      throw new SidecarError(
        'ERR_CONFIG',
        `${variable}: cannot read ${what} ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        { cause: err },
      );
    }
  };
  const ca = read(secret.caFile, 'STS_SIDECAR_KUBE_CA_FILE', 'the API server CA');
  if (!ca.includes('-----BEGIN CERTIFICATE-----')) {
    throw new SidecarError(
      'ERR_CONFIG',
      `STS_SIDECAR_KUBE_CA_FILE: ${secret.caFile} holds no PEM certificate`,
    );
  }
  const nsFile = `${secret.tokenFile.slice(0, secret.tokenFile.lastIndexOf('/'))}/namespace`;
  const namespace =
    secret.namespace ?? read(nsFile, 'STS_SIDECAR_SECRET_NAMESPACE', 'the pod namespace file').trim();
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace)) {
    throw new SidecarError('ERR_CONFIG', `STS_SIDECAR_SECRET_NAMESPACE: ${nsFile} holds no namespace name`);
  }
  const [accessKeyId, secretAccessKey, sessionToken, expiration] = secret.keys;
  return new KubernetesSecretSink({
    apiUrl: secret.apiUrl,
    namespace,
    name: secret.name,
    keys: { accessKeyId, secretAccessKey, sessionToken, expiration },
    transport: createHttpTransport({ ca: [ca], maxResponseBytes: MAX_SECRET_RESPONSE_BYTES }),
    readToken: () => readFile(secret.tokenFile, 'utf8'),
    timeoutMs: deps.timeoutMs,
  });
}
