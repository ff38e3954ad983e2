import { fromRoot } from "#common/paths.ts";
import type { ServiceDefinition } from "#common/service.ts";
import { createBuddiesApp } from "./app.ts";
import { createKindRegistry } from "./kinds/registry.ts";
import { Runner } from "./runner/runner.ts";
import { serviceStatusChecker } from "./runner/service-status.ts";

/**
 * The buddies composition root (docs/architecture.md "A service is a value"): kinds, the runner of this process and the admin app.
 * Several of these processes, on one machine or many, share the buddies through PostgreSQL leases.
 */
export const buddiesService: ServiceDefinition = {
  name: "buddies",
  listen: (config) => ({
    host: config.services.buddies.host,
    port: config.services.buddies.port,
    portEnv: "BUDDIES_ADMIN_PORT",
  }),
  createApp(ctx) {
    const { config, log, pool, listener, metrics, domains } = ctx;
    const kinds = createKindRegistry({ dir: fromRoot(config.buddies.kindsDir), log });
    const runner: Runner = new Runner({
      config,
      pool,
      listener,
      log,
      kind: (name) => kinds.get(name),
      // the `service` kind checks this process too, at the URL it listens on (known once it does)
      serviceStatus: serviceStatusChecker(config, () => runner.adminUrl ?? undefined),
      metrics: metrics.registry,
    });
    return {
      handler: createBuddiesApp({ config, log, pool, runner, kinds, metrics, domains }),
      onListening(url) {
        runner.adminUrl = url;
        runner.start();
      },
      // SIGHUP or a domain changed at runtime: `config.domains` is updated in place (common/service.ts), so
      // a tick now starts or stops the buddies of a domain added or removed
      reload: () => runner.poke(),
      close: () => runner.stop(),
    };
  },
};
