import { formatMismatches } from "#common/config/mongooseim.ts";
import type { Config } from "#common/config/schema.ts";
import type { Logger } from "#common/logger.ts";
import type { ServiceDefinition } from "#common/service.ts";
import { createAuthApp } from "./app.ts";
import { createAuthCore } from "./core/auth-core.ts";

/**
 * The auth service's composition root (docs/architecture.md "A service is a value"): the auth core and
 * MongooseIM's contract over it.
 */
export const authService: ServiceDefinition = {
  name: "auth",
  listen: (config) => ({
    host: config.services.auth.host,
    port: config.services.auth.port,
    portEnv: "AUTH_PORT",
    rawRequestBytes: true, // MongooseIM 2.1.0 sends UTF-8 unencoded in its queries
  }),
  async createApp(ctx) {
    const core = await createAuthCore({ ...ctx, metrics: ctx.metrics.registry });
    warnMismatches(ctx.config, ctx.log);
    if (!ctx.config.services.auth.basicAuth) {
      ctx.log.warn(
        "no basic_auth configured: any local process may call the auth service (set AUTH_BASIC_AUTH)",
      );
    }
    return {
      handler: createAuthApp({ ...ctx, core }),
      // SIGHUP: domains and their modules from the config files as they are now; requests keep flowing
      async reload(config) {
        await core.reload(config);
        warnMismatches(config, ctx.log);
        ctx.log.info("domains reloaded");
      },
      close: () => core.close(),
    };
  },
};

/** A domain whose password settings do not fit the MongooseIM version it declares: one warning each. */
function warnMismatches(config: Pick<Config, "domains">, log: Logger): void {
  for (const [name, d] of Object.entries(config.domains)) {
    for (const problem of formatMismatches(name, d)) log.warn({ domain: name }, problem);
  }
}
