// The README yaml blocks a reader copies must parse. Whether the manifests among them (and examples/*.yaml)
// are valid Kubernetes objects is the API server's verdict now (admission.test.ts: dry run and create against
// a real kube-apiserver, strict field validation), which replaced the kubernetes-models schema check here.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHART_DIR, EXAMPLES_DIR, markdownYamlBlocks, parseDocs } from './support.ts';

describe('README yaml blocks', () => {
  it('every README yaml block is a manifest, a values file or a marked Helm snippet', () => {
    for (const file of [join(CHART_DIR, 'README.md'), join(EXAMPLES_DIR, 'README.md')]) {
      for (const [i, block] of markdownYamlBlocks(file).entries()) {
        if (block.includes('{{')) continue;
        expect(() => parseDocs(block, `${file} block ${i}`), `${file} block ${i}`).not.toThrow();
      }
    }
  });

  it('a broken block is caught', () => {
    expect(() => parseDocs('a: [1, 2\n', 'x')).toThrow(/x document 0/);
  });
});
