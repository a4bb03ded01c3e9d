/**
 * TypeScript side of the kube-apiserver test stack (test/stack/kube-apiserver.sh): start/stop it, and a small
 * admin client for the tests (namespaces, create with or without server-side dry run, service-account tokens
 * through the TokenRequest API). Talks to the real API server with the project's own HTTP transport.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createHttpTransport,
  type HttpResponse,
  type HttpTransport,
} from '../../src/adapters/http-transport.ts';

const here = dirname(fileURLToPath(import.meta.url));
const SCRIPT = join(here, 'kube-apiserver.sh');
const REPO_ROOT = resolve(here, '..', '..');
export const KUBE_STACK_DIR = process.env.KUBE_STACK_DIR ?? join(REPO_ROOT, '.stack', 'kube');
/** Keep in step with test/stack/kube-apiserver.sh. */
export const KUBE_VERSION = process.env.KUBE_VERSION ?? 'v1.37.2';

export interface KubeStack {
  readonly url: string;
  readonly caFile: string;
  readonly tokenFile: string;
  readonly etcdUrl: string;
  readonly version: string;
  /** The service-account issuer (`iss` of the tokens it issues): http://127.0.0.1:<KUBE_ISSUER_PORT>. */
  readonly issuer: string;
  readonly pids: { readonly etcd: number; readonly apiserver: number };
}

/** Whether an executable of that name is in a PATH directory. */
export function onPath(bin: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => {
    try {
      accessSync(join(dir, bin), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export function apiserverBinary(): string {
  const root = process.env.STS_CACHE_DIR ?? join(homedir(), '.cache', 'sts-sidecar');
  return join(root, `kube-${KUBE_VERSION}`, 'kube-apiserver');
}

/** Whether the stack can run here, with a one-line reason when it cannot. */
export function kubeUsable(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux')
    return { ok: false, reason: `kube stack needs Linux (${process.platform})` };
  if (!onPath('etcd'))
    return { ok: false, reason: 'etcd not installed; run test/stack/kube-apiserver.sh install' };
  try {
    accessSync(apiserverBinary(), constants.X_OK);
  } catch {
    return {
      ok: false,
      reason: `kube-apiserver not built at ${apiserverBinary()}; run test/stack/kube-apiserver.sh install`,
    };
  }
  if (!onPath('openssl') || !onPath('curl')) return { ok: false, reason: 'openssl and curl are needed' };
  return { ok: true };
}

const usable = kubeUsable();
/** Why the API-server tests cannot run here, or undefined when they can. */
export const kubeSkipReason: string | undefined = 'reason' in usable ? usable.reason : undefined;
/** CI sets STSTEST_REQUIRE_KUBE=1: then an unusable stack fails the run instead of skipping it. */
export const requireKube = process.env.STSTEST_REQUIRE_KUBE === '1';
export const skipKube = kubeSkipReason !== undefined && !requireKube;

export function kubeGate(file: string): string {
  if (skipKube) console.warn(`[${file}] skipped: ${kubeSkipReason}`);
  return kubeSkipReason ? ` (kube-apiserver unusable: ${kubeSkipReason})` : '';
}

function script(command: 'up' | 'down' | 'status'): Promise<{ code: number; stderr: string }> {
  return new Promise((res) => {
    execFile('bash', [SCRIPT, command], { timeout: 180_000 }, (err, _stdout, stderr) =>
      res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr }),
    );
  });
}

export function readStack(): KubeStack {
  return JSON.parse(readFileSync(join(KUBE_STACK_DIR, 'env.json'), 'utf8')) as KubeStack;
}

export async function isKubeUp(): Promise<boolean> {
  return (await script('status')).code === 0;
}

export async function ensureKube(): Promise<KubeStack> {
  const r = await script('up');
  if (r.code !== 0) throw new Error(`test/stack/kube-apiserver.sh up failed:\n${r.stderr}`);
  return readStack();
}

export async function stopKube(): Promise<void> {
  const r = await script('down');
  if (r.code !== 0) throw new Error(`test/stack/kube-apiserver.sh down failed:\n${r.stderr}`);
}

/** The one-letter state of a process (R, S, T, Z, ...), or undefined when it is gone. */
function processState(pid: number): string | undefined {
  try {
    return /\) ([A-Za-z]) /.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/**
 * Stops (SIGSTOP) or resumes (SIGCONT) the API server: stopped, it accepts connections but never answers.
 * Waits until the kernel shows the new state (a group stop is asynchronous), and refuses a PID that is not the
 * stack's kube-apiserver.
 */
export async function pauseApiserver(stack: KubeStack, paused: boolean): Promise<void> {
  const pid = stack.pids.apiserver;
  const comm = (() => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      return undefined;
    }
  })();
  if (comm !== 'kube-apiserver')
    throw new Error(`pid ${pid} is not the stack's kube-apiserver (${comm ?? 'gone'})`);
  process.kill(pid, paused ? 'SIGSTOP' : 'SIGCONT');
  for (let i = 0; i < 200; i++) {
    const state = processState(pid);
    if (paused ? state === 'T' : state !== 'T') return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(
    `kube-apiserver (pid ${pid}) did not ${paused ? 'stop' : 'resume'}: state ${processState(pid) ?? 'gone'}`,
  );
}

// ---- a small admin client ----------------------------------------------------------------------------

type Obj = Record<string, unknown>;

/** REST path segments of the kinds the tests create (group/version prefix, plural, namespaced). */
const KINDS: Record<string, { prefix: string; plural: string; namespaced: boolean }> = {
  'v1/Namespace': { prefix: '/api/v1', plural: 'namespaces', namespaced: false },
  'v1/ServiceAccount': { prefix: '/api/v1', plural: 'serviceaccounts', namespaced: true },
  'v1/ConfigMap': { prefix: '/api/v1', plural: 'configmaps', namespaced: true },
  'v1/Secret': { prefix: '/api/v1', plural: 'secrets', namespaced: true },
  'v1/Pod': { prefix: '/api/v1', plural: 'pods', namespaced: true },
  'apps/v1/Deployment': { prefix: '/apis/apps/v1', plural: 'deployments', namespaced: true },
  'batch/v1/Job': { prefix: '/apis/batch/v1', plural: 'jobs', namespaced: true },
  'rbac.authorization.k8s.io/v1/Role': {
    prefix: '/apis/rbac.authorization.k8s.io/v1',
    plural: 'roles',
    namespaced: true,
  },
  'rbac.authorization.k8s.io/v1/RoleBinding': {
    prefix: '/apis/rbac.authorization.k8s.io/v1',
    plural: 'rolebindings',
    namespaced: true,
  },
};

export interface ApiResult {
  readonly status: number;
  readonly body: Obj;
}

/** The API server's verdict as one line: status, reason and message (for test failure output). */
export function verdict(r: ApiResult): string {
  return `${r.status} ${String(r.body.reason ?? '')}: ${String(r.body.message ?? '')}`;
}

export class KubeAdmin {
  readonly stack: KubeStack;
  readonly #transport: HttpTransport;
  readonly #token: string;

  constructor(stack: KubeStack) {
    this.stack = stack;
    this.#transport = createHttpTransport({
      ca: [readFileSync(stack.caFile, 'utf8')],
      maxResponseBytes: 8 << 20,
    });
    this.#token = readFileSync(stack.tokenFile, 'utf8').trim();
  }

  /** A transport trusting the stack's CA (for adapters under test). */
  get transport(): HttpTransport {
    return this.#transport;
  }

  async request(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<ApiResult> {
    const res: HttpResponse = await this.#transport({
      url: `${this.stack.url}${path}`,
      method,
      headers: {
        authorization: `Bearer ${this.#token}`,
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
    let parsed: Obj;
    try {
      parsed = JSON.parse(res.body) as Obj;
    } catch {
      parsed = { message: res.body.slice(0, 500) };
    }
    return { status: res.status, body: parsed };
  }

  static pathOf(doc: Obj, namespace: string): string {
    const key = `${String(doc.apiVersion)}/${String(doc.kind)}`;
    const k = KINDS[key];
    if (!k) throw new Error(`the test client knows no REST path for ${key}`);
    return k.namespaced ? `${k.prefix}/namespaces/${namespace}/${k.plural}` : `${k.prefix}/${k.plural}`;
  }

  /**
   * Creates a manifest in a namespace; `dryRun` makes it a server-side dry run (admission and validation,
   * nothing stored). fieldValidation=Strict: unknown or duplicate fields are refused, not just warned about.
   */
  async create(doc: Obj, namespace: string, options: { dryRun: boolean }): Promise<ApiResult> {
    const query = `?fieldValidation=Strict${options.dryRun ? '&dryRun=All' : ''}`;
    return this.request('POST', `${KubeAdmin.pathOf(doc, namespace)}${query}`, doc);
  }

  async createNamespace(name: string): Promise<void> {
    const r = await this.request('POST', '/api/v1/namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name, labels: { 'sts-sidecar.test/run': 'true' } },
    });
    if (r.status !== 201) throw new Error(`create namespace ${name}: ${verdict(r)}`);
  }

  /** A real service-account token from the TokenRequest API (signed by the API server's SA key). */
  async serviceAccountToken(
    namespace: string,
    serviceAccount: string,
    expirationSeconds = 3600,
  ): Promise<string> {
    const r = await this.request(
      'POST',
      `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`,
      { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds } },
    );
    const token = (r.body.status as { token?: string } | undefined)?.token;
    if (r.status !== 201 || !token)
      throw new Error(`TokenRequest ${namespace}/${serviceAccount}: ${verdict(r)}`);
    return token;
  }
}

/** A namespace name unique to this run (namespaces never finish deleting without a controller-manager). */
export function uniqueNamespace(label: string): string {
  const suffix = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  return `${label
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, 40)}-${suffix}`
    .slice(0, 63)
    .replace(/-+$/, '');
}
