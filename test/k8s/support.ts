// Shared helpers of the test/k8s suites: read the examples, the charts and the Markdown, find
// containers in workloads, and take Helm templates apart
// statically (for the checks of every branch; rendering is helm's, in helm.ts).
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const EXAMPLES_DIR = join(ROOT, 'examples');
export const HELM_DIR = join(ROOT, 'helm');
export const CHART_DIR = join(HELM_DIR, 'sts-sidecar');
export const EXAMPLE_CHART_DIR = join(HELM_DIR, 'example-app');

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function readText(path: string): string {
  return readFileSync(path, 'utf8');
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function readYaml(path: string): Json {
  return parse(readText(path)) as Json;
}

/** A parsed YAML document and where it came from (for messages). */
export interface SourcedDoc {
  readonly source: string;
  readonly doc: JsonObject;
}

/** All YAML documents of a text; throws on a YAML syntax error; skips empty documents. */
export function parseDocs(text: string, source: string): SourcedDoc[] {
  const out: SourcedDoc[] = [];
  parseAllDocuments(text).forEach((d, i) => {
    if (d.errors.length > 0)
      throw new Error(`${source} document ${i}: ${d.errors[0]?.message ?? 'YAML error'}`);
    const value = d.toJS() as unknown;
    if (value === null || value === undefined) return;
    if (!isObject(value)) throw new Error(`${source} document ${i} is not a mapping`);
    out.push({ source: `${source}#${i}`, doc: value });
  });
  return out;
}

export function exampleYamlFiles(): string[] {
  return readdirSync(EXAMPLES_DIR)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort()
    .map((f) => join(EXAMPLES_DIR, f));
}

/** Bodies of the ```yaml / ```yml fenced blocks of a Markdown file. */
export function markdownYamlBlocks(path: string): string[] {
  const blocks: string[] = [];
  const re = /^```ya?ml[^\n]*\n([\s\S]*?)^```/gm;
  for (const m of readText(path).matchAll(re)) blocks.push(m[1] ?? '');
  return blocks;
}

export function isManifest(doc: JsonObject): boolean {
  return typeof doc.apiVersion === 'string' && typeof doc.kind === 'string';
}

/**
 * Kubernetes manifests of the ```yaml blocks of a Markdown file. A block holding Helm template
 * actions ({{ ... }}) is a chart snippet, not a manifest, and is skipped; any other block must be
 * valid YAML.
 */
export function markdownManifests(path: string): SourcedDoc[] {
  const out: SourcedDoc[] = [];
  markdownYamlBlocks(path).forEach((block, i) => {
    if (block.includes('{{')) return;
    for (const d of parseDocs(block, `${path} block ${i}`)) if (isManifest(d.doc)) out.push(d);
  });
  return out;
}

export function exampleManifests(): SourcedDoc[] {
  return exampleYamlFiles().flatMap((f) => parseDocs(readText(f), f));
}

/** Every manifest a reader can copy: examples/*.yaml and the READMEs' yaml blocks. */
export function allCopyableManifests(): SourcedDoc[] {
  return [
    ...exampleManifests(),
    ...markdownManifests(join(CHART_DIR, 'README.md')),
    ...markdownManifests(join(EXAMPLES_DIR, 'README.md')),
  ];
}

// ---- workloads -------------------------------------------------------------------------------

export interface Container extends JsonObject {
  name: string;
}

export function podSpecOf(doc: JsonObject): JsonObject | undefined {
  const at = (o: Json | undefined, ...keys: string[]): Json | undefined => {
    let cur: Json | undefined = o;
    for (const k of keys) cur = isObject(cur) ? cur[k] : undefined;
    return cur;
  };
  let spec: Json | undefined;
  switch (doc.kind) {
    case 'Pod':
      spec = doc.spec;
      break;
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet':
    case 'Job':
      spec = at(doc, 'spec', 'template', 'spec');
      break;
    case 'CronJob':
      spec = at(doc, 'spec', 'jobTemplate', 'spec', 'template', 'spec');
      break;
    default:
      spec = undefined;
  }
  return isObject(spec) ? spec : undefined;
}

export function listOf(v: Json | undefined): JsonObject[] {
  return Array.isArray(v) ? v.filter(isObject) : [];
}

export function containersOf(spec: JsonObject, field: 'containers' | 'initContainers'): Container[] {
  return listOf(spec[field]).filter((c): c is Container => typeof c.name === 'string');
}

/** A container running the sts-sidecar image. */
export function isSidecar(c: JsonObject): boolean {
  return typeof c.image === 'string' && /(^|\/)sts-sidecar[:@]/.test(c.image);
}

export function envMap(c: JsonObject): Map<string, string | undefined> {
  const m = new Map<string, string | undefined>();
  for (const e of listOf(c.env)) {
    if (typeof e.name === 'string') m.set(e.name, typeof e.value === 'string' ? e.value : undefined);
  }
  return m;
}

export function stringList(v: Json | undefined): string[] {
  return Array.isArray(v) ? v.map((x) => String(x)) : [];
}

// ---- Helm templates, statically ----------------------------------------------------------------

export function filesUnder(dir: string, pred: (name: string) => boolean): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p, pred));
    else if (pred(e.name)) out.push(p);
  }
  return out.sort();
}

export function templateFiles(chartDir: string): string[] {
  return filesUnder(join(chartDir, 'templates'), () => true);
}

export interface Action {
  /** Text between the delimiters, without trim markers and comments. */
  readonly body: string;
  readonly offset: number;
}

/** The {{ ... }} actions of a template, in order; throws on an unterminated action. */
export function templateActions(text: string): Action[] {
  const out: Action[] = [];
  let i = 0;
  for (;;) {
    const start = text.indexOf('{{', i);
    if (start < 0) break;
    // A comment {{/* ... */}} may itself contain {{ }} (Go's lexer looks for */ first).
    const comment = /^\{\{-?\s*\/\*/.exec(text.slice(start, start + 8));
    const searchFrom = comment ? text.indexOf('*/', start) : start + 2;
    if (searchFrom < 0) throw new Error(`unterminated comment at offset ${start}`);
    const end = text.indexOf('}}', searchFrom);
    if (end < 0) throw new Error(`unterminated {{ at offset ${start}`);
    let body = text.slice(start + 2, end);
    body = body.replace(/^-\s/, ' ').replace(/\s-$/, ' ');
    body = body.replace(/\/\*[\s\S]*?\*\//g, ' ').trim();
    out.push({ body, offset: start });
    i = end + 2;
  }
  return out;
}

const OPENERS = new Set(['if', 'range', 'with', 'define', 'block']);

/** Named templates defined in a text ({{ define "x" }}). */
export function definedTemplates(text: string): string[] {
  return templateActions(text).flatMap((a) => {
    const m = /^define\s+"([^"]+)"/.exec(a.body);
    return m?.[1] === undefined ? [] : [m[1]];
  });
}

/** Named templates used by include/template in a text. */
export function includedTemplates(text: string): string[] {
  return templateActions(text).flatMap((a) =>
    [...a.body.matchAll(/\b(?:include|template)\s+"([^"]+)"/g)].flatMap((m) =>
      m[1] === undefined ? [] : [m[1]],
    ),
  );
}

/** .Values.a.b paths referenced in a template (also $.Values.a.b). */
export function valuesPaths(text: string): string[][] {
  const paths: string[][] = [];
  for (const a of templateActions(text)) {
    for (const m of a.body.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
      paths.push((m[1] ?? '').slice(1).split('.'));
    }
  }
  return paths;
}

/** Whether path exists in a values tree (every step an existing key of a mapping). */
export function hasPath(values: Json, path: readonly string[]): boolean {
  let cur: Json = values;
  for (const k of path) {
    if (!isObject(cur) || !(k in cur)) return false;
    cur = cur[k] as Json;
  }
  return true;
}

/** Leaf paths of a values tree (arrays and empty maps count as leaves). */
export function leafPaths(values: Json, prefix: string[] = []): string[][] {
  if (!isObject(values) || Object.keys(values).length === 0) return [prefix];
  return Object.entries(values).flatMap(([k, v]) => leafPaths(v, [...prefix, k]));
}

/** Deep merge like Helm's coalescing: maps merge, anything else in override wins. */
export function mergeValues(base: Json, override: Json): Json {
  if (!isObject(base) || !isObject(override)) return override === undefined ? base : override;
  const out: JsonObject = { ...base };
  for (const [k, v] of Object.entries(override)) out[k] = k in base ? mergeValues(base[k] as Json, v) : v;
  return out;
}

/** Body of {{ define "name" }} ... {{ end }} in a template file (nesting aware). */
export function defineBody(text: string, name: string): string {
  const actions = templateActions(text);
  const startIdx = actions.findIndex((a) => a.body.startsWith(`define "${name}"`));
  if (startIdx < 0) throw new Error(`no define "${name}"`);
  const startAction = actions[startIdx] as Action;
  const bodyStart = text.indexOf('}}', startAction.offset) + 2;
  let depth = 0;
  for (const a of actions.slice(startIdx + 1)) {
    const word = /^([a-z]+)\b/.exec(a.body)?.[1] ?? '';
    if (OPENERS.has(word)) depth++;
    else if (word === 'end') {
      if (depth === 0) return text.slice(bodyStart, a.offset);
      depth--;
    }
  }
  throw new Error(`define "${name}" has no end`);
}

/**
 * The YAML shape of a template body with the template actions stubbed out: lines that are only
 * actions are dropped, other actions become the string TPL. Not a renderer: it shows the static
 * structure (keys, literal values) so tests can check probes, ports and args written in the chart.
 */
export function stubYaml(templateBody: string): Json {
  const lines = templateBody
    .split('\n')
    .filter((l) => l.replace(/\{\{[\s\S]*?\}\}/g, '').trim() !== '' || !l.includes('{{'))
    .map((l) => l.replace(/\{\{[\s\S]*?\}\}/g, 'TPL'));
  return parse(lines.join('\n')) as Json;
}
