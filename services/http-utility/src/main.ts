import { type AuthCore, createAuthCore } from "../../common/src/auth/auth-core.ts";
import { loadConfig } from "../../common/src/config/load.ts";
import { createMetrics } from "../../common/src/http/metrics.ts";
import { runService } from "../../common/src/service.ts";
import { createHttpUtilityApp } from "./app.ts";
import { createMediaDeps, type MediaDeps } from "./attachments/media-deps.ts";
import { createPushDeps, type PushDeps } from "./notifications/push-deps.ts";

let core: AuthCore | undefined;
let media: MediaDeps | undefined;
let push: PushDeps | undefined;

await runService({
  name: "http-utility",
  listen: (config) => ({
    host: config.services.httpUtility.host,
    port: config.services.httpUtility.port,
    portEnv: "HTTP_UTILITY_PORT",
    tls: config.services.httpUtility.tls,
  }),
  async createApp(ctx) {
    const metrics = createMetrics("http-utility");
    core = await createAuthCore({ ...ctx, metrics: metrics.registry });
    media = await createMediaDeps(ctx.config, ctx.log);
    push = await createPushDeps(ctx, { metrics: metrics.registry });
    return createHttpUtilityApp({ ...ctx, core, media, push, metrics });
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
