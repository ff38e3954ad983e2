import { pino } from "pino";
import { Gauge, type Registry } from "prom-client";
import { loadConfig } from "#common/config/load.ts";
import { createMetrics } from "#common/http/metrics.ts";
import type { ServiceDefinition } from "#common/service.ts";
import { authService } from "../../services/auth/src/service.ts";
import { buddiesService } from "../../services/buddies/src/service.ts";
import { httpUtilityService } from "../../services/http-utility/src/service.ts";
import type { TestDatabase } from "./database.ts";

/** One series name a service's `/metrics` may show, and every label it may carry there. */
export interface ExposedMetric {
  name: string;
  /** the prom-client metric it comes from (a histogram's `_bucket`, `_sum` and `_count` share theirs) */
  family: string;
  type: string;
  labels: Set<string>;
  services: Set<string>;
}

/** Labels Prometheus adds to every series it scrapes (its `job` and `instance` target labels). */
export const SCRAPE_LABELS = ["job", "instance"];

/**
 * The series each service exposes, read from the registries its real composition root fills
 * (services/<svc>/src/service.ts): each `createApp` runs in-process on the test's database, as
 * runService runs it, with the registry common/service.ts gives it, then is closed again.
 */
export async function exposedMetrics(db: TestDatabase): Promise<Map<string, ExposedMetric>> {
  const config = loadConfig({ env: { APP_ENV: "test" } });
  const log = pino({ level: "silent" });
  const exposed = new Map<string, ExposedMetric>();
  const services: ServiceDefinition[] = [authService, httpUtilityService, buddiesService];
  for (const def of services) {
    const metrics = createMetrics(def.name);
    const app = await def.createApp({ config, log, pool: db.pool, listener: db.listener, metrics });
    try {
      for (const m of await describeRegistry(metrics.registry)) {
        const known = exposed.get(m.name);
        if (known) {
          for (const l of m.labels) known.labels.add(l);
          known.services.add(def.name);
        } else exposed.set(m.name, { ...m, services: new Set([def.name]) });
      }
    } finally {
      await app.close?.();
    }
  }
  return exposed;
}

/** The labels every series of `registry` carries (its default labels: `service`), found by a probe. */
async function defaultLabels(registry: Registry): Promise<string[]> {
  const probe = new Gauge({ name: "ops_test_probe", help: "probe", registers: [registry] });
  probe.set(1);
  try {
    const json = await registry.getMetricsAsJSON();
    return Object.keys(json.find((m) => m.name === "ops_test_probe")?.values[0]?.labels ?? {});
  } finally {
    registry.removeSingleMetric("ops_test_probe");
  }
}

/** Every series name of a registry, as the text format names them, with the labels each may carry. */
async function describeRegistry(registry: Registry): Promise<Omit<ExposedMetric, "services">[]> {
  const defaults = await defaultLabels(registry);
  const values = new Map((await registry.getMetricsAsJSON()).map((m) => [m.name, m.values]));
  return registry.getMetricsAsArray().flatMap((metric) => {
    const m = metric as unknown as { name: string; type: string; labelNames?: string[] };
    const labels = new Set([...(m.labelNames ?? []), ...defaults, ...SCRAPE_LABELS]);
    // labels a collect() sets without declaring them (Node's default metrics)
    for (const v of values.get(m.name) ?? []) for (const l of Object.keys(v.labels)) labels.add(l);
    const series = (suffix: string, extra: string[] = []) => ({
      name: `${m.name}${suffix}`,
      family: m.name,
      type: m.type,
      labels: new Set([...labels, ...extra]),
    });
    switch (m.type) {
      case "histogram":
        return [series("_bucket", ["le"]), series("_sum"), series("_count")];
      case "summary":
        return [series("", ["quantile"]), series("_sum"), series("_count")];
      default:
        return [series("")];
    }
  });
}
