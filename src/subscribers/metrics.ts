import type { SidecarMetrics } from '../http/metrics.ts';
import type { LeaseSubscriber } from '../lease-events.ts';

/** Feeds every lease event to the Prometheus metrics. */
export function metricsSubscriber(metrics: Pick<SidecarMetrics, 'observe'>): LeaseSubscriber {
  return (event) => metrics.observe(event);
}
