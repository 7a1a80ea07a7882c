/** Prometheus metrics for one keeper (prom-client), served at `/metrics`. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface Metrics {
  registry: Registry;
  counter(name: string, help: string, labelNames?: string[]): Counter<string>;
  /** `collect`, when given, sets the gauge's values when /metrics is read (values computed on demand). */
  gauge(name: string, help: string, labelNames?: string[], collect?: (gauge: Gauge<string>) => void): Gauge<string>;
  histogram(name: string, help: string, labelNames?: string[], buckets?: number[]): Histogram<string>;
}

export function createMetrics(component: string): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ component });
  collectDefaultMetrics({ register: registry });
  const prefix = "computenet_";
  return {
    registry,
    counter: (name, help, labelNames = []) =>
      new Counter({ name: prefix + name, help, labelNames, registers: [registry] }),
    gauge: (name, help, labelNames = [], collect) =>
      new Gauge({
        name: prefix + name,
        help,
        labelNames,
        registers: [registry],
        ...(collect
          ? {
              collect() {
                collect(this);
              },
            }
          : {}),
      }),
    histogram: (name, help, labelNames = [], buckets) =>
      new Histogram({ name: prefix + name, help, labelNames, registers: [registry], ...(buckets ? { buckets } : {}) }),
  };
}

/** Counters of a keeper's transactions (TxSender's `metrics` option), one set per keeper. */
export interface TxMetrics {
  /** Mined with success, by action (the sender's label: "registerNode", "createTask", ...). */
  sent: Counter<string>;
  /** Failed, by action and reason: "reverted" (at estimation or mined), "nonce" (its nonce went to another transaction), "error" (gave up after retries). */
  failed: Counter<string>;
}

/** `computenet_<keeper>_transactions_sent_total{action}` and `computenet_<keeper>_transactions_failed_total{action,reason}`. */
export function txMetrics(metrics: Metrics, keeper: string): TxMetrics {
  return {
    sent: metrics.counter(`${keeper}_transactions_sent_total`, "Transactions mined with success, by action", ["action"]),
    failed: metrics.counter(`${keeper}_transactions_failed_total`, "Transactions that failed, by action and reason (reverted, nonce, error)", ["action", "reason"]),
  };
}

/**
 * The event follower's gauges: `computenet_<keeper>_event_cursor_block` (last block fully handled) and
 * `computenet_<keeper>_event_lag_blocks` (blocks behind the head: head − confirmations − cursor; −1 while
 * the chain does not answer), read when /metrics is scraped.
 */
export function followerMetrics(
  metrics: Metrics,
  keeper: string,
  options: { head: () => Promise<number>; cursor: () => number; confirmations?: number },
): void {
  const confirmations = options.confirmations ?? 0;
  new Gauge({
    name: `computenet_${keeper}_event_lag_blocks`,
    help: "Blocks the event follower still has to handle: head - confirmations - cursor (-1: chain unreachable)",
    registers: [metrics.registry],
    async collect() {
      try {
        this.set(Math.max(0, (await options.head()) - confirmations - options.cursor()));
      } catch {
        this.set(-1);
      }
    },
  });
  new Gauge({
    name: `computenet_${keeper}_event_cursor_block`,
    help: "Last block whose events are all handled",
    registers: [metrics.registry],
    collect() {
      this.set(options.cursor());
    },
  });
}
