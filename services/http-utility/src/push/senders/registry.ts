import type { Config } from "#common/config/schema.ts";
import type { Secrets } from "#common/config/secrets.ts";
import type { Logger } from "#common/logger.ts";
import { ProblemCollector } from "#common/plugins/problems.ts";
import { createRegistry } from "#common/plugins/registry.ts";
import apns from "./apns.ts";
import fcm from "./fcm.ts";
import logSender from "./log-sender.ts";
import type { ProviderEndpoints, PushApps, PushSender, PushSenders, PushService } from "./sender.ts";
import { pushSenderPoint } from "./sender.ts";

export type { ProviderEndpoints } from "./sender.ts";

/** The push senders by kind, the key of `push.apps.<app>` holding their options: the one list of them. */
export const pushSenderKinds = createRegistry(pushSenderPoint, [fcm, apns, logSender]);

/**
 * The senders of every app in `push.apps` (docs/architecture.md "Plugins"): FCM when `fcm` is set, APNs alert
 * and VoIP senders when `apns` is, the log for every service when `log` is (development). Every problem of
 * every app (a credential file that cannot be read, a key that cannot sign, `log` in production) is in the
 * one StartupProblems thrown before the service listens, each naming its key; tests pass `endpoints` to
 * point the real SDKs at local provider servers.
 */
export function createPushSenders(
  apps: PushApps,
  deps: { log: Logger; env: Config["env"]; secrets: Secrets; endpoints?: ProviderEndpoints },
): PushSenders {
  const all = new Map<string, Map<PushService, PushSender>>();
  const problems = new ProblemCollector();
  for (const [app, credentials] of Object.entries(apps)) {
    const senders = new Map<PushService, PushSender>();
    const log = deps.log.child({ app });
    for (const [kind, options] of Object.entries(credentials)) {
      if (options === undefined) continue;
      const key = `push.apps.${app}.${kind}`;
      try {
        const made = pushSenderKinds.create(
          { key, optionsKey: key },
          { kind, options },
          {
            app,
            log,
            env: deps.env,
            secrets: deps.secrets,
            ...(deps.endpoints ? { endpoints: deps.endpoints } : {}),
          },
        );
        for (const sender of made) senders.set(sender.service, sender);
      } catch (err) {
        problems.add(err);
      }
    }
    all.set(app, senders);
  }
  if (problems.any) {
    void closePushSenders(all);
    problems.throwIfAny();
  }
  return all;
}

export async function closePushSenders(senders: PushSenders): Promise<void> {
  await Promise.all(
    [...senders.values()].flatMap((m) => [...m.values()].map((s) => s.close().catch(() => {}))),
  );
}
