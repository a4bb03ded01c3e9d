import { readFileSync } from 'node:fs';
import { startupSnapshot } from 'node:v8';
import { backendNotes } from './config/backend-notes.ts';
import { idpTokenUrlWarning } from './config/idp-url.ts';
import { leaseKey } from './config/leases.ts';
import { loadConfig, describeConfig } from './config/load.ts';
import { VARIABLES, VARIABLE_NAMES, REQUIRED_VARIABLES, type Config } from './config/schema.ts';
import { ConfigError, errorCode, isSidecarError } from './errors.ts';
import { isDenial } from './lease-outcome.ts';
import { createLogger, type Logger } from './logger.ts';
import { VERSION } from './version.ts';
import { pino } from 'pino';

/** Exit codes; documented in the README. */
export const EXIT = { ok: 0, unexpected: 1, config: 2, failed: 3, denied: 4 } as const;

const COMMANDS = ['run', 'once', 'credential-process', 'check-config'] as const;
type Command = (typeof COMMANDS)[number];

const USAGE = `sts-sidecar ${VERSION}: keeps short-lived S3 credentials fresh on disk.

Usage: sts-sidecar [command]

Commands:
  run                 the daemon (default): keep the credential set fresh until SIGTERM
  once                write one credential set and exit (init containers, Jobs)
  credential-process  print one set as AWS credential_process JSON on stdout
  check-config        validate the environment and print the effective configuration

Options:
  -h, --help          show this help
  -v, --version       print the version

Signals (run): SIGTERM/SIGINT stop cleanly (exit 0); SIGHUP refreshes now.
Exit codes: 0 ok, 1 unexpected error, 2 bad usage or configuration, 3 exchange failed, 4 denied by policy.

Configuration (environment variables${REQUIRED_VARIABLES.length ? '; * = required' : ''}):
${VARIABLE_NAMES.map((n) => `  ${n}${REQUIRED_VARIABLES.includes(n) ? ' *' : ''}${VARIABLES[n].default === undefined ? '' : ` (default ${VARIABLES[n].default === '' ? '""' : VARIABLES[n].default})`}\n      ${VARIABLES[n].help}`).join('\n')}
`;

function parseArgs(argv: readonly string[]): Command | 'help' | 'version' | { error: string } {
  const args = argv.filter((a) => a !== '');
  if (args.includes('-h') || args.includes('--help')) return 'help';
  if (args.includes('-v') || args.includes('--version')) return 'version';
  if (args.length > 1) return { error: `too many arguments: ${args.join(' ')}` };
  const command = args[0] ?? 'run';
  return (COMMANDS as readonly string[]).includes(command)
    ? (command as Command)
    : { error: `unknown command: ${command}` };
}

function configWarnings(config: Config): string[] {
  const warnings: string[] = [];
  if (config.tokenAudience === undefined)
    warnings.push('STS_SIDECAR_TOKEN_AUDIENCE is not set: the token audience is not checked locally');
  for (const lease of config.leases) {
    if (lease.ttlSeconds > 3600)
      warnings.push(
        `${leaseKey(lease, 'ttlSeconds', 'STS_SIDECAR_TTL_SECONDS')} is over 3600: short leases are the main revocation control`,
      );
    if (lease.actions.includes('delete'))
      warnings.push(`${leaseKey(lease, 'actions', 'STS_SIDECAR_ACTIONS')} includes delete`);
  }
  if (config.readyMarginSeconds >= config.stsMinDurationSeconds) {
    warnings.push(
      'STS_SIDECAR_READY_MARGIN_SECONDS is not shorter than STS_SIDECAR_STS_MIN_DURATION_SECONDS: a lease at the STS minimum never makes the sidecar ready',
    );
  }
  const idpUrl = idpTokenUrlWarning(config.idpTokenUrl);
  if (idpUrl !== undefined) warnings.push(idpUrl);
  warnings.push(...backendNotes(config).warnings);
  return warnings;
}

async function main(argv: readonly string[]): Promise<number> {
  const parsed = parseArgs(argv);
  if (parsed === 'help') {
    process.stdout.write(USAGE);
    return EXIT.ok;
  }
  if (parsed === 'version') {
    process.stdout.write(`${VERSION}\n`);
    return EXIT.ok;
  }
  if (typeof parsed === 'object') {
    process.stderr.write(`sts-sidecar: ${parsed.error}\n\n${USAGE}`);
    return EXIT.config;
  }
  const command = parsed;

  let config: Config;
  try {
    config = loadConfig(process.env, (p) => readFileSync(p, 'utf8'));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(
        `sts-sidecar: invalid configuration (ERR_CONFIG)\n${err.issues.map((i) => `  - ${i}`).join('\n')}\n`,
      );
      return EXIT.config;
    }
    throw err;
  }

  if (command === 'check-config') {
    process.stdout.write(
      JSON.stringify(
        {
          valid: true,
          config: describeConfig(config),
          backend_mode: backendNotes(config).mode,
          warnings: configWarnings(config),
        },
        null,
        2,
      ) + '\n',
    );
    return EXIT.ok;
  }

  // credential_process owns stdout: its JSON is the only thing that may appear there. The log (one outcome
  // line at info, the lease's audit event) goes to stderr instead.
  const logger: Logger = createLogger({
    level: config.logLevel,
    destination: pino.destination({ dest: command === 'credential-process' ? 2 : 1, sync: true }),
  });
  const ctx = {
    config,
    logger,
    readTextFile: (p: string) => readFileSync(p, 'utf8'),
    kill: (pid: number, signal: NodeJS.Signals) => process.kill(pid, signal),
  };
  const controller = new AbortController();
  const onStop = () => controller.abort();
  process.once('SIGTERM', onStop);
  process.once('SIGINT', onStop);

  const app = await import('./app.ts');
  if (command === 'run') {
    let daemon: Awaited<ReturnType<typeof app.startDaemon>> | undefined;
    // Installed before start-up: SIGHUP's default action would kill the process.
    process.on('SIGHUP', () => {
      logger.info({ event: 'sidecar.refresh_requested', signal: 'SIGHUP' }, 'refresh requested');
      daemon?.refreshNow();
    });
    try {
      daemon = await app.startDaemon(ctx, controller.signal);
    } catch (err) {
      if (!isSidecarError(err)) throw err;
      process.stderr.write(`sts-sidecar run: ${err.message} (${errorCode(err)})\n`);
      return err.code === 'ERR_CONFIG' ? EXIT.config : EXIT.failed;
    }
    try {
      await daemon.done;
    } catch (err) {
      if (!isSidecarError(err)) throw err;
      process.stderr.write(`sts-sidecar run: ${err.message} (${errorCode(err)})\n`);
      return EXIT.failed;
    }
    return EXIT.ok;
  }
  try {
    if (command === 'once') {
      await app.runOnce(ctx, controller.signal);
    } else {
      const json = await app.runCredentialProcess(ctx, controller.signal);
      process.stdout.write(json + '\n');
    }
    return EXIT.ok;
  } catch (err) {
    if (!isSidecarError(err)) throw err;
    process.stderr.write(`sts-sidecar ${command}: ${err.message} (${errorCode(err)})\n`);
    return isDenial(err) ? EXIT.denied : err.code === 'ERR_CONFIG' ? EXIT.config : EXIT.failed;
  }
}

function start(argv: readonly string[]): void {
  main(argv).then(
    (code) => {
      process.exitCode = code;
      // Sockets the SDK keeps alive must not hold a stopping process open past its grace period.
      setTimeout(() => process.exit(code), 1500).unref();
    },
    (err: unknown) => {
      const message = err instanceof Error ? `${err.name}: ${err.message}` : 'unknown error';
      process.stderr.write(`sts-sidecar: unexpected error (${errorCode(err)}): ${message}\n`);
      process.exit(EXIT.unexpected);
    },
  );
}

// Building the startup snapshot (scripts/build.mjs): every module is loaded by now; run later, in the
// process started from the snapshot, where argv has no script path (`node --snapshot-blob X run`).
if (startupSnapshot.isBuildingSnapshot()) {
  startupSnapshot.setDeserializeMainFunction(() => start(process.argv.slice(1)));
} else {
  start(process.argv.slice(2));
}
