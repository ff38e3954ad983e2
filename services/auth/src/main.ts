import { loadConfig } from "#common/config/load.ts";
import { createMetrics } from "#common/http/metrics.ts";
import { runService } from "#common/service.ts";
import { createAuthApp } from "./app.ts";
import { type AuthCore, createAuthCore } from "./core/auth-core.ts";

let core: AuthCore | undefined;

await runService({
  name: "auth",
  listen: (config) => ({
    host: config.services.auth.host,
    port: config.services.auth.port,
    portEnv: "AUTH_PORT",
    rawRequestBytes: true, // MongooseIM 2.1.0 sends UTF-8 unencoded in its queries
  }),
  async createApp(ctx) {
    const metrics = createMetrics("auth");
    core = await createAuthCore({ ...ctx, metrics: metrics.registry });
    if (!ctx.config.services.auth.basicAuth) {
      ctx.log.warn(
        "no basic_auth configured: any local process may call the auth service (set AUTH_BASIC_AUTH)",
      );
    }
    return createAuthApp({ ...ctx, core, metrics });
  },
  // SIGHUP: domains and their modules from the config files as they are now; requests keep flowing
  async onReload(ctx) {
    await core?.reload(loadConfig());
    ctx.log.info("domains reloaded");
  },
  onShutdown: () => core?.close(),
});
