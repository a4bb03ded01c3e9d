import type { Config } from '../config/schema.ts';
import type { Logger } from '../logger.ts';
import type { Part } from './run-group.ts';

/** How long shutdown waits for notifications in flight, and again after aborting them. */
const NOTIFY_DRAIN_MS = 2000;

/** The notifier as a part; `channels` is what `sidecar.started` lists. */
export interface NotifierPart extends Part {
  readonly channels: readonly string[];
}

/** The notifier, or undefined when no channel is configured (most pods use the files and never load it). */
export async function notifierPart(
  config: Config,
  logger: Logger,
  kill: (pid: number, signal: NodeJS.Signals) => void,
): Promise<NotifierPart | undefined> {
  if (!config.notifySignal && !config.notifyUrl && !config.notifyCommand) return undefined;
  const { createNotifier, notifyChannels } = await import('../subscribers/notifier.ts');
  const notifier = createNotifier({
    ...(config.notifySignal && config.notifyPidFile
      ? { signal: { name: config.notifySignal, pidFile: config.notifyPidFile } }
      : {}),
    ...(config.notifyUrl ? { url: config.notifyUrl } : {}),
    ...(config.notifyCommand ? { command: config.notifyCommand } : {}),
    timeoutMs: config.requestTimeoutSeconds * 1000,
    logger,
    kill,
  });
  return {
    name: 'notifier',
    channels: notifyChannels(config),
    subscriber: notifier.subscriber,
    // Bounded, so SIGTERM never hangs on a notification.
    close: () => notifier.close(NOTIFY_DRAIN_MS),
  };
}
