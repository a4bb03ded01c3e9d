import { publicFields, type LeaseEvent, type LeaseSubscriber } from '../lease-events.ts';
import type { Logger } from '../logger.ts';

const LOG_MESSAGES: Partial<Record<LeaseEvent['event'], [level: 'info' | 'warn', message: string]>> = {
  'lease.acquired': ['info', 'lease acquired'],
  'lease.renewed': ['info', 'lease renewed'],
  'lease.denied': ['warn', 'lease denied'],
  'lease.failed': ['warn', 'lease attempt failed'],
  'lease.expired': ['warn', 'lease expired'],
  'lease.revoked': ['warn', 'lease revoked'],
};

/** One log line per outcome; loop and call events only at trace level. */
export function logSubscriber(logger: Logger): LeaseSubscriber {
  return (event) => {
    const entry = LOG_MESSAGES[event.event];
    if (!entry) {
      logger.trace(event, event.event);
      return;
    }
    logger[entry[0]](publicFields(event), entry[1]);
  };
}
