import { runService } from "../../common/src/service.ts";
import { createHttpUtilityApp } from "./app.ts";

await runService({
  name: "http-utility",
  listen: (config) => ({
    host: config.services.httpUtility.host,
    port: config.services.httpUtility.port,
    portEnv: "HTTP_UTILITY_PORT",
    tls: config.services.httpUtility.tls,
  }),
  createApp: createHttpUtilityApp,
});
