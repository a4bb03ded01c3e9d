/**
 * The shape of src/: the house drawn from the real imports (static, type-only and dynamic) has no circle
 * and no arrow running back up the layers; the composition root, the parts and the lease loop fit on a
 * screen. Each check also runs on a made-up input it must reject.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = dirname(fileURLToPath(import.meta.url));

/**
 * Top to bottom; a module may import its own layer or any layer below. The composition root (main, app)
 * builds the parts; the parts build the loop, the servers, the subscribers and the adapters; those meet
 * only in the shared vocabulary (events, ports, logger), the pure domain, the config types and the errors.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['main.ts'],
  ['app.ts'],
  ['parts/'],
  ['lease-loop.ts', 'vending-pipeline.ts', 'lease-outcome.ts', 'subscribers/'],
  ['http/', 'adapters/'],
  ['lease-events.ts', 'ports.ts', 'logger.ts'],
  ['domain/'],
  ['config/'],
  ['errors.ts', 'version.ts'],
];

type Graph = ReadonlyMap<string, readonly string[]>;

function layerOf(module: string): number {
  const i = LAYERS.findIndex((l) => l.some((p) => (p.endsWith('/') ? module.startsWith(p) : module === p)));
  if (i < 0) throw new Error(`${module} is in no layer: add it to LAYERS`);
  return i;
}

/** Every non-test module under src/ and the src/ modules it imports. */
function importGraph(): Graph {
  const files = readdirSync(SRC, { recursive: true, encoding: 'utf8' }).filter(
    (f) => f.endsWith('.ts') && !f.endsWith('.test.ts'),
  );
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const text = readFileSync(join(SRC, file), 'utf8');
    const specifiers = [...text.matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
    graph.set(
      file,
      specifiers.map((s) => relative(SRC, join(SRC, dirname(file), s))),
    );
  }
  return graph;
}

/** Imports that point to a higher layer, as "from -> to". */
function arrowsUp(graph: Graph): string[] {
  return [...graph].flatMap(([from, tos]) =>
    tos.filter((to) => layerOf(to) < layerOf(from)).map((to) => `${from} -> ${to}`),
  );
}

/** One cycle per strongly connected part of the graph, as "a -> b -> a"; none when it is a tree of layers. */
function cycles(graph: Graph): string[] {
  const found: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (node: string, path: string[]) => {
    if (state.get(node) === 'done') return;
    if (state.get(node) === 'open') {
      found.push([...path.slice(path.indexOf(node)), node].join(' -> '));
      return;
    }
    state.set(node, 'open');
    for (const next of graph.get(node) ?? []) visit(next, [...path, node]);
    state.set(node, 'done');
  };
  for (const node of graph.keys()) visit(node, []);
  return found;
}

describe('the import graph of src/', () => {
  const graph = importGraph();

  it('reads the real imports (static, type-only and dynamic)', () => {
    expect(graph.get('app.ts')).toContain('parts/run-group.ts');
    expect(graph.get('parts/health-server-part.ts')).toContain('http/server.ts');
    expect(graph.get('lease-loop.ts')).toContain('vending-pipeline.ts');
    for (const tos of graph.values()) for (const to of tos) expect(graph.has(to), to).toBe(true);
  });

  it('has no cycle', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('has no arrow running back up', () => {
    expect(arrowsUp(graph)).toEqual([]);
  });

  it('would see a cycle and an arrow back up (negative control)', () => {
    const bad = new Map(graph);
    bad.set('http/server.ts', [...(graph.get('http/server.ts') ?? []), 'lease-loop.ts']);
    bad.set('errors.ts', ['config/load.ts']);
    expect(arrowsUp(bad).sort()).toEqual(['errors.ts -> config/load.ts', 'http/server.ts -> lease-loop.ts']);
    expect(cycles(bad).some((c) => c.includes('errors.ts -> config/load.ts'))).toBe(true);
  });
});

/** Where a reader starts: the composition root, the parts and the lease loop. */
const ON_A_SCREEN = ['app.ts', 'parts/', 'lease-loop.ts', 'vending-pipeline.ts', 'lease-outcome.ts'];
const MAX_FUNCTION_LINES = 80;
const MAX_CLASS_LINES = 300;

/** Functions over MAX_FUNCTION_LINES and classes over MAX_CLASS_LINES, as "file:name lines". */
function oversized(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const lines = (n: ts.Node) =>
    source.getLineAndCharacterOfPosition(n.getEnd()).line -
    source.getLineAndCharacterOfPosition(n.getStart(source)).line +
    1;
  const name = (n: ts.Node) =>
    (n as { name?: ts.Node }).name?.getText(source) ??
    (ts.isVariableDeclaration(n.parent) ? n.parent.name.getText(source) : '(anonymous)');
  const found: string[] = [];
  const visit = (n: ts.Node) => {
    const limit = ts.isClassLike(n) ? MAX_CLASS_LINES : ts.isFunctionLike(n) ? MAX_FUNCTION_LINES : undefined;
    if (limit !== undefined && lines(n) > limit) found.push(`${file}:${name(n)} ${lines(n)}`);
    ts.forEachChild(n, visit);
  };
  visit(source);
  return found;
}

describe('the composition root, the parts and the lease loop', () => {
  const files = readdirSync(SRC, { recursive: true, encoding: 'utf8' }).filter(
    (f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && ON_A_SCREEN.some((p) => f.startsWith(p)),
  );

  it(`have no function over ${MAX_FUNCTION_LINES} lines and no class over ${MAX_CLASS_LINES}`, () => {
    expect(files).toContain('parts/run-group.ts');
    expect(files.flatMap((f) => oversized(f, readFileSync(join(SRC, f), 'utf8')))).toEqual([]);
  });

  it('would see a long function (negative control)', () => {
    const body = Array.from({ length: MAX_FUNCTION_LINES }, (_, i) => `  const v${i} = ${i};`).join('\n');
    expect(oversized('x.ts', `export function long() {\n${body}\n}\n`)).toEqual([
      `x.ts:long ${MAX_FUNCTION_LINES + 2}`,
    ]);
  });
});
