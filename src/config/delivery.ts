import * as z from 'zod';

/** Signals the notifier may send; the ones apps conventionally use for "reload". */
export const NOTIFY_SIGNALS = [
  'SIGHUP',
  'SIGUSR1',
  'SIGUSR2',
  'SIGINT',
  'SIGTERM',
  'SIGQUIT',
  'SIGWINCH',
] as const;
export type NotifySignal = (typeof NOTIFY_SIGNALS)[number];

/** Where the credentials endpoint listens; only the two loopback literals, since it hands out secrets. */
export interface EndpointAddress {
  readonly host: '127.0.0.1' | '::1';
  readonly port: number;
}

/** `off`, `127.0.0.1:port` or `[::1]:port`; port 0 (tests) picks a free one. */
export const credentialsEndpointString = z
  .string()
  .refine(
    (v) => v === 'off' || /^(127\.0\.0\.1|\[::1\]):\d{1,5}$/.test(v),
    'must be off, 127.0.0.1:port or [::1]:port (the endpoint hands out credentials: loopback only)',
  )
  .transform((v): EndpointAddress | undefined => {
    if (v === 'off') return undefined;
    const i = v.lastIndexOf(':');
    return { host: v.startsWith('[') ? '::1' : '127.0.0.1', port: Number(v.slice(i + 1)) };
  })
  .refine((a) => a === undefined || a.port <= 65535, 'port must be at most 65535');

/** A JSON array of strings: the argv of a command run without a shell. */
export const commandArgvString = z
  .string()
  .transform((v, ctx) => {
    try {
      return JSON.parse(v) as unknown;
    } catch {
      ctx.addIssue({
        code: 'custom',
        message: 'must be a JSON array of strings, e.g. ["/bin/reload","--now"]',
      });
      return z.NEVER;
    }
  })
  .pipe(
    z
      .array(z.string().min(1, 'must not contain empty strings'), {
        error: 'must be a JSON array of strings, e.g. ["/bin/reload","--now"]',
      })
      .min(1, 'must name a program'),
  );

/** Delivery settings that depend on each other; returns issues naming the variables. */
export function deliveryIssues(d: {
  endpoint: EndpointAddress | undefined;
  tokenFile: string | undefined;
  signal: NotifySignal | undefined;
  pidFile: string | undefined;
}): string[] {
  const issues: string[] = [];
  if (d.endpoint && d.tokenFile === undefined) {
    issues.push(
      'STS_SIDECAR_CREDENTIALS_ENDPOINT_TOKEN_FILE: required when STS_SIDECAR_CREDENTIALS_ENDPOINT is on',
    );
  }
  if ((d.signal === undefined) !== (d.pidFile === undefined)) {
    issues.push(
      d.signal === undefined
        ? 'STS_SIDECAR_NOTIFY_SIGNAL: required when STS_SIDECAR_NOTIFY_PID_FILE is set'
        : 'STS_SIDECAR_NOTIFY_PID_FILE: required when STS_SIDECAR_NOTIFY_SIGNAL is set',
    );
  }
  return issues;
}

/**
 * A notification URL must not carry user:password: Node's fetch refuses such URLs with an error that
 * quotes the whole URL, credentials included.
 */
export function hasNoUserinfo(url: string): boolean {
  try {
    const u = new URL(url);
    return u.username === '' && u.password === '';
  } catch {
    return true; // not a URL: the URL check reports it
  }
}
export const NO_USERINFO_MESSAGE =
  'must not contain user:password@ (a credential in the URL would end up in error messages)';
