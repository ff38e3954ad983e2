import { startListener } from "#common/db/listener.ts";
import { createMetrics } from "#common/http/metrics.ts";
import { fromRoot } from "#common/paths.ts";
import { runService } from "#common/service.ts";
import { createBuddiesApp } from "./app.ts";
import { createKindRegistry } from "./kinds/registry.ts";
import { Runner } from "./runner/runner.ts";
import { serviceStatusChecker } from "./runner/service-status.ts";

/**
 * The buddies composition root (conventions.md 1): kinds, the runner of this process and the admin app.
 * Several of these processes, on one machine or many, share the buddies through PostgreSQL leases.
 */

let runner: Runner | undefined;
let selfUrl: string | undefined;
let listener: { close(): Promise<void> } | undefined;

await runService({
  name: "buddies",
  listen: (config) => ({
    host: config.services.buddies.host,
    port: config.services.buddies.port,
    portEnv: "BUDDIES_ADMIN_PORT",
  }),
  createApp: (ctx) => {
    const { config, log, pool } = ctx;
    const metrics = createMetrics("buddies");
    const kinds = createKindRegistry({ dir: fromRoot(config.buddies.kindsDir), log });
    runner = new Runner({
      config,
      pool,
      log,
      kind: (name) => kinds.get(name),
      serviceStatus: serviceStatusChecker(config, () => selfUrl),
      metrics: metrics.registry,
    });
    return createBuddiesApp({ ...ctx, runner, kinds, metrics });
  },
  onListening: (ctx, url) => {
    selfUrl = url;
    const r = runner as Runner;
    r.adminUrl = url;
    const connectionString = (ctx.pool as unknown as { options: { connectionString: string } }).options
      .connectionString;
    listener = startListener({
      connectionString,
      channels: ["buddies_changed"],
      onMessage: () => r.poke(),
      onReconnect: () => r.poke(),
      log: ctx.log,
    });
    r.start();
  },
  onShutdown: async () => {
    await listener?.close();
    await runner?.stop();
  },
});
