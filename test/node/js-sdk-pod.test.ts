/**
 * A Node app on the JS SDK v3 in the chart's pod on a real kubelet, the way a Node user of helm/example-app
 * wires it: `stsSidecar.app.awsConfig.enabled` renders an AWS shared config (`credential_process = cat
 * <credentials>/credentials.json`, the region) in a ConfigMap, mounts it and sets AWS_CONFIG_FILE; the app
 * (test/node/sdk-app.ts, image `test/stack/app-images.sh node`: Node 24 and @aws-sdk/client-s3, UID 10001)
 * passes no credentials and no region, so the SDK's default chain reads that profile and runs the process
 * (/bin/sh, cat) on every refresh. The other route the chart offers, its credentials endpoint
 * (AWS_CONTAINER_CREDENTIALS_FULL_URI and the token file), the same app takes through the same chain.
 * Against the real Ceph RGW trusting the API server's issuer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeGate, skipNode } from '../stack/kube-node.ts';
import { nodeAppImage } from '../stack/node-images.ts';
import {
  APP_CONTAINER,
  BUCKET,
  freePort,
  PREFIX,
  podReady,
  SIDECAR_CONTAINER,
  startPodStack,
  type Obj,
  type PodStack,
  events,
} from './support.ts';

const gate = nodeGate('test/node/js-sdk-pod.test.ts');

describe.skipIf(skipNode)(`the JS SDK in the chart's pod on a real kubelet${gate}`, () => {
  let s: PodStack;
  let image: string;
  beforeAll(async () => {
    s = await startPodStack('pods-js-sdk');
    const t0 = Date.now();
    image = await nodeAppImage({
      APP_S3_ENDPOINT: s.rgw.endpoint,
      APP_S3_REGION: s.rgw.region,
      APP_BUCKET: BUCKET,
      APP_PREFIX: PREFIX,
    });
    console.info(`[js-sdk-pod] Node app image built (or found) and imported in ${Date.now() - t0} ms`);
  }, 300_000);
  afterAll(async () => {
    await s?.close();
  });
  const firstCall = (pod: Obj) =>
    s.waitLog(
      pod,
      APP_CONTAINER,
      'a first S3 call',
      (l) => events(l, 's3').length > 0 || events(l, 'fatal').length > 0,
    );

  it("the default credential chain runs the chart's credential_process profile: inside the prefix ok, outside AccessDenied", async () => {
    const [repository, tag] = image.split(':') as [string, string];
    const docs = await s.install(
      'jssdk',
      await s.values(
        { app: { awsConfig: { enabled: true } } },
        { image: { repository, tag, pullPolicy: 'Never' } },
      ),
    );
    // The route under test is the profile file: the chart gives the app no keys and no endpoint URL.
    const deployment = docs.find((d) => d.kind === 'Deployment') as Obj;
    const app = (((deployment.spec as Obj).template as Obj).spec as Obj).containers as Obj[];
    const env = ((app.find((c) => c.name === APP_CONTAINER)?.env as Obj[] | undefined) ?? []).map((e) =>
      String(e.name),
    );
    expect(env).toContain('AWS_CONFIG_FILE');
    expect(env).not.toContain('AWS_ACCESS_KEY_ID');
    expect(env).not.toContain('AWS_CONTAINER_CREDENTIALS_FULL_URI');
    expect(docs.some((d) => d.kind === 'ConfigMap')).toBe(true);

    const pod = await s.waitPod('jssdk', 'Ready', podReady, 120_000);
    const lines = await firstCall(pod);
    const start = events(lines, 'start')[0];
    expect(start?.awsConfigFile, 'the chart set AWS_CONFIG_FILE').toBe('/etc/sts-sidecar/aws/config');
    // Another UID than the sidecar's 65532; credentials.json readable through the chart's fsGroup.
    expect(start?.uid).toBe(10001);
    expect(start?.groups).toContain(65532);

    const first = events(lines, 's3')[0];
    expect(first?.inside, `JS SDK put inside the prefix: ${JSON.stringify(lines)}`).toBe('ok');
    expect(first?.outside, 'JS SDK put outside the prefix').toBe('AccessDenied');
    // The SDK's credentials are the sidecar's current set (credential_process output has its expiration).
    expect(typeof first?.keyId).toBe('string');
    expect(Date.parse(String(first?.expiration))).toBeGreaterThan(Date.now());
    const sidecar = s.json(pod, SIDECAR_CONTAINER);
    const acquired = events(sidecar, 'lease.acquired').at(-1);
    expect(Date.parse(String(first?.expiration))).toBe(Date.parse(String(acquired?.expiration)));
  }, 240_000);

  it("the default credential chain takes the chart's credentials endpoint and token file", async () => {
    const [repository, tag] = image.split(':') as [string, string];
    await s.install(
      'jsendpoint',
      await s.values(
        { credentialsEndpoint: { enabled: true, port: await freePort() }, app: { artifactStoreEnv: false } },
        { image: { repository, tag, pullPolicy: 'Never' } },
      ),
    );
    const pod = await s.waitPod('jsendpoint', 'Ready', podReady, 120_000);
    const lines = await firstCall(pod);
    expect(events(lines, 'start')[0]?.awsConfigFile, 'no profile file on this route').toBeNull();
    const first = events(lines, 's3')[0];
    expect(first?.inside, `JS SDK put inside the prefix: ${JSON.stringify(lines)}`).toBe('ok');
    expect(first?.outside, 'JS SDK put outside the prefix').toBe('AccessDenied');
    const acquired = events(s.json(pod, SIDECAR_CONTAINER), 'lease.acquired').at(-1);
    expect(Date.parse(String(first?.expiration))).toBe(Date.parse(String(acquired?.expiration)));
  }, 240_000);
});
