import { z } from "zod";
import { defineSmsSender } from "./sender.ts";

/**
 * Development: the message, code included, goes to the service's log instead of a phone. The one place a
 * code is ever logged; a production domain with this sender gets a warning at start (no SMS would go out).
 */
export default defineSmsSender({
  kind: "log",
  summary: "development: the message, code included, goes to the service's log",
  options: z.object({}).strict(),
  create(_options, deps) {
    if (deps.env === "production") {
      deps.log.warn("registration SMS of this domain go to the log (sms kind `log`): no phone receives them");
    }
    return {
      kind: "log",
      async send(to, text, code) {
        deps.log.info({ to, code, text }, `SMS to ${to}: ${text}`);
      },
    };
  },
});
