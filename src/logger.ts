import { pino, type DestinationStream, type Logger } from 'pino';
import { VERSION } from './version.ts';

export type { Logger } from 'pino';

/**
 * Paths pino censors wherever they appear. The sidecar never puts secrets into log fields on purpose;
 * this is the second line of defence for an error object or a future field that would.
 */
export const REDACT_PATHS = [
  'token',
  'raw',
  'secretAccessKey',
  'sessionToken',
  'SecretAccessKey',
  'SessionToken',
  'WebIdentityToken',
  'authorization',
  '*.token',
  '*.raw',
  '*.secretAccessKey',
  '*.sessionToken',
  '*.SecretAccessKey',
  '*.SessionToken',
  '*.WebIdentityToken',
  '*.authorization',
  'headers.authorization',
];

/** The root logger: JSON lines, constant messages, ISO time, secrets censored. */
export function createLogger(options: { level: string; destination: DestinationStream }): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'sts-sidecar', version: VERSION },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination,
  );
}
