import { type AuthCore, createAuthCore } from "#auth";
import { loadConfig } from "#common/config/load.ts";
import type { Metrics } from "#common/http/metrics.ts";
import { createMetrics } from "#common/http/metrics.ts";
import { runService } from "#common/service.ts";
import { createHttpUtilityApp, createHttpUtilityInternalApp } from "./app.ts";
import { createMediaDeps, type MediaDeps } from "./attachments/media-deps.ts";
import { createPushDeps, type PushDeps } from "./push/deps.ts";

let core: AuthCore | undefined;
let media: MediaDeps | undefined;
let push: PushDeps | undefined;
let metrics: Metrics | undefined;

await runService({
  name: "http-utility",
  listen: (config) => ({
    host: config.services.httpUtility.host,
    port: config.services.httpUtility.port,
    portEnv: "HTTP_UTILITY_PORT",
    tls: config.services.httpUtility.tls,
  }),
  async createApp(ctx) {
    metrics = createMetrics("http-utility");
    core = await createAuthCore({ ...ctx, metrics: metrics.registry });
    media = await createMediaDeps(ctx.config, ctx.log);
    push = await createPushDeps(ctx, { metrics: metrics.registry });
    return createHttpUtilityApp({ ...ctx, core, media, push, metrics });
  },
  // MongooseIM's hooks and MongoosePush API: loopback by default, never on the public port (docs/push.md)
  internal: {
    listen: (config) => ({ ...config.services.httpUtility.internal, portEnv: "HTTP_UTILITY_INTERNAL_PORT" }),
    createApp(ctx) {
      if (!push) throw new Error("http-utility: the internal app is built after the public one");
      return createHttpUtilityInternalApp({ ...ctx, push, ...(metrics ? { metrics } : {}) });
    },
  },
  // SIGHUP: domains (authenticators) from the config files as they are now
  async onReload(ctx) {
    await core?.reload(loadConfig());
    ctx.log.info("domains reloaded");
  },
  onShutdown: async () => {
    await core?.close();
    await media?.storage.close();
    await push?.close();
  },
});
