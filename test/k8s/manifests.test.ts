// Every manifest a reader can copy (examples/*.yaml, ```yaml blocks of the READMEs) is checked
// against the Kubernetes OpenAPI schemas of kubernetes-models.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CHART_DIR,
  EXAMPLES_DIR,
  allCopyableManifests,
  exampleManifests,
  exampleYamlFiles,
  markdownManifests,
  markdownYamlBlocks,
  parseDocs,
  validateManifest,
} from './support.ts';

describe('copyable manifests validate against the Kubernetes API schemas', () => {
  it('finds the expected examples', () => {
    const names = exampleYamlFiles().map((f) => f.slice(EXAMPLES_DIR.length + 1));
    expect(names).toEqual(
      expect.arrayContaining([
        'artifact-store-deployment.yaml',
        'aws-sdk-credential-process.yaml',
        'once-job.yaml',
      ]),
    );
    const kinds = exampleManifests().map((d) => `${String(d.doc.apiVersion)}/${String(d.doc.kind)}`);
    expect(kinds).toEqual(
      expect.arrayContaining(['v1/ServiceAccount', 'apps/v1/Deployment', 'batch/v1/Job', 'v1/ConfigMap']),
    );
  });

  it('the READMEs hold manifests too (otherwise this suite would check nothing there)', () => {
    expect(markdownManifests(join(CHART_DIR, 'README.md')).length).toBeGreaterThan(0);
    expect(markdownManifests(join(EXAMPLES_DIR, 'README.md')).length).toBeGreaterThan(0);
  });

  it('every README yaml block is a manifest, a values file or a marked Helm snippet', () => {
    for (const file of [join(CHART_DIR, 'README.md'), join(EXAMPLES_DIR, 'README.md')]) {
      for (const [i, block] of markdownYamlBlocks(file).entries()) {
        if (block.includes('{{')) continue;
        expect(() => parseDocs(block, `${file} block ${i}`), `${file} block ${i}`).not.toThrow();
      }
    }
  });

  for (const { source, doc } of allCopyableManifests()) {
    it(`${source.replace(/^.*\/(examples|helm)\//, '$1/')}: ${String(doc.kind)} ${String((doc.metadata as { name?: string } | undefined)?.name)}`, async () => {
      await expect(validateManifest(doc)).resolves.toBeUndefined();
    });
  }
});

describe('the validator rejects broken manifests (so the checks above can fail)', () => {
  const base = (): Record<string, unknown> => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'x' },
    spec: {
      selector: { matchLabels: { app: 'x' } },
      template: {
        metadata: { labels: { app: 'x' } },
        spec: { containers: [{ name: 'app', image: 'busybox:1.37' }] },
      },
    },
  });

  it('accepts the well-formed baseline', async () => {
    await expect(validateManifest(base() as never)).resolves.toBeUndefined();
  });

  it('rejects a container with a numeric name', async () => {
    const doc = base() as { spec: { template: { spec: { containers: Array<Record<string, unknown>> } } } };
    const c = doc.spec.template.spec.containers[0];
    if (c) c.name = 42;
    await expect(validateManifest(doc as never)).rejects.toThrow(/name/);
  });

  it('rejects a Deployment without a selector and a probe port of the wrong type', async () => {
    const doc = base() as {
      spec: Record<string, unknown> & { template: { spec: { containers: Array<Record<string, unknown>> } } };
    };
    delete doc.spec.selector;
    await expect(validateManifest(doc as never)).rejects.toThrow(/selector/);
    const bad = base() as { spec: { template: { spec: { containers: Array<Record<string, unknown>> } } } };
    const c = bad.spec.template.spec.containers[0];
    if (c) c.readinessProbe = { httpGet: { path: '/readyz', port: true } };
    await expect(validateManifest(bad as never)).rejects.toThrow();
  });

  it('rejects an unknown kind', async () => {
    await expect(validateManifest({ apiVersion: 'v1', kind: 'Sidecar' } as never)).rejects.toThrow();
  });
});
