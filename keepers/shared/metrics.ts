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
