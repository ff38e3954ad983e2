import { createAuthCore } from "#auth";
import type { ServiceDefinition } from "#common/service.ts";
import { createHttpUtilityHandler, createHttpUtilityInternalApp } from "./app.ts";
import { createMediaDeps } from "./attachments/media-deps.ts";
import { createPushDeps } from "./push/deps.ts";
import { withXep0357 } from "./push/xep0357/index.ts";
import { createRegistrationDeps } from "./registration/deps.ts";
import { startRetention } from "./retention/schedule.ts";
import { createAppSessions } from "./sessions/tokens.ts";

/**
 * The http-utility composition root (docs/architecture.md "A service is a value"): the auth core it shares with the auth service's
 * code (on this process's LISTEN connection), and each feature of the app, built once here.
 */
export const httpUtilityService: ServiceDefinition = {
  name: "http-utility",
  listen: (config) => ({
    host: config.services.httpUtility.host,
    port: config.services.httpUtility.port,
    portEnv: "HTTP_UTILITY_PORT",
    tls: config.services.httpUtility.tls,
  }),
  async createApp(ctx) {
    const { config, log, pool, metrics } = ctx;
    const core = await createAuthCore({ ...ctx, metrics: metrics.registry });
    const attachments = await createMediaDeps(ctx);
    // with the XEP-0357 app server's components, one process of the cluster holding each (docs/xmpp-clients.md)
    const push = await withXep0357(ctx, await createPushDeps(ctx, { metrics: metrics.registry }));
    const registration = createRegistrationDeps(ctx, { metrics: metrics.registry });
    if (push.jobs) {
      const retention = config.retention;
      await startRetention({ boss: push.jobs, pool, log, retention, storage: attachments.storage });
    }
    // app sessions' access tokens, refused at once when revoked anywhere (NOTIFY on the same LISTEN connection)
    const sessions = createAppSessions({ config, pool, log, listener: ctx.listener });
    const deps = { config, log, pool, core, attachments, push, registration, sessions, metrics };
    return {
      handler: createHttpUtilityHandler(deps),
      // MongooseIM's hooks and MongoosePush API: loopback by default, never on the public port (docs/push.md)
      internal: {
        listen: { ...config.services.httpUtility.internal, portEnv: "HTTP_UTILITY_INTERNAL_PORT" },
        handler: createHttpUtilityInternalApp(deps),
      },
      // SIGHUP: domains (authenticators) from the config files as they are now
      async reload(next) {
        await core.reload(next);
        log.info("domains reloaded");
      },
      async close() {
        sessions.close();
        await core.close();
        // the job queue first: a scheduled purge in progress may still delete media files
        await push.close();
        await attachments.storage.close();
      },
    };
  },
};
