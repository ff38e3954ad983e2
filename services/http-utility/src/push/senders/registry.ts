import { StartupError } from "#common/errors.ts";
import type { Logger } from "#common/logger.ts";
import { createApnsSender } from "./apns.ts";
import { createFcmSender } from "./fcm.ts";
import type { PushApps, PushSender, PushSenders, PushService } from "./sender.ts";

/**
 * The senders of every app in `push.apps` (conventions.md 6): FCM when `fcm` is set, APNs alert and VoIP
 * senders when `apns` is. A credential file that cannot be read stops the service before it listens, with
 * the app named; tests pass `fakes` to point the real SDKs at local provider servers.
 */
export interface ProviderEndpoints {
  fcmAgent?: import("node:https").Agent;
  apnsEndpoint?: { address: string; port: number; ca: string };
}

export function buildPushSenders(
  apps: PushApps,
  deps: { log: Logger; env: NodeJS.ProcessEnv; endpoints?: ProviderEndpoints },
): PushSenders {
  const all = new Map<string, Map<PushService, PushSender>>();
  for (const [app, credentials] of Object.entries(apps)) {
    const senders = new Map<PushService, PushSender>();
    const log = deps.log.child({ app });
    try {
      if (credentials.fcm) {
        senders.set(
          "fcm",
          createFcmSender(credentials.fcm, {
            app,
            log,
            ...(deps.endpoints?.fcmAgent ? { httpAgent: deps.endpoints.fcmAgent } : {}),
          }),
        );
      }
      if (credentials.apns) {
        for (const service of ["apns", "apns-voip"] as const) {
          senders.set(
            service,
            createApnsSender(credentials.apns, {
              app,
              log,
              service,
              env: deps.env,
              ...(deps.endpoints?.apnsEndpoint ? { endpoint: deps.endpoints.apnsEndpoint } : {}),
            }),
          );
        }
      }
    } catch (err) {
      throw new StartupError(
        `push.apps.${app}: ${(err as Error).message}; fix the credentials (docs/push.md)`,
      );
    }
    all.set(app, senders);
  }
  return all;
}

export async function closePushSenders(senders: PushSenders): Promise<void> {
  await Promise.all(
    [...senders.values()].flatMap((m) => [...m.values()].map((s) => s.close().catch(() => {}))),
  );
}
