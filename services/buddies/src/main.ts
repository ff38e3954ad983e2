import { runService } from "../../common/src/service.ts";
import { createBuddiesApp } from "./app.ts";

await runService({
  name: "buddies",
  listen: (config) => ({
    host: config.services.buddies.host,
    port: config.services.buddies.port,
    portEnv: "BUDDIES_ADMIN_PORT",
  }),
  createApp: createBuddiesApp,
});
