import { runService } from "../../common/src/service.ts";
import { createAuthApp } from "./app.ts";

await runService({
  name: "auth",
  listen: (config) => ({
    host: config.services.auth.host,
    port: config.services.auth.port,
    portEnv: "AUTH_PORT",
  }),
  createApp: createAuthApp,
});
