import type { TokenResult } from "../../services/http-utility/src/push/notifier.ts";
import type { SendOutcome } from "../../services/http-utility/src/push/senders/sender.ts";
import type { BenchContext, Benchmark } from "./frame.ts";
import { bareFcmClient } from "./push-bare-clients.ts";
import type { FakesTaken } from "./push-fakes-process.ts";
import {
  IN_FLIGHT,
  MESSAGE,
  NOTIFICATIONS,
  PROJECT_ID,
  pushFanOutSides,
  startPushStack,
} from "./push-fanout-support.ts";

const NAME = "push-fanout-fcm";

const delivered = (r: TokenResult | SendOutcome) => {
  if (r.status !== "sent") throw new Error(`not sent: ${r.status} ${"reason" in r ? r.reason : ""}`);
};

const allReached = (t: FakesTaken) =>
  t.fcm.sends[200] === NOTIFICATIONS && Object.keys(t.fcm.sends).length === 1
    ? undefined
    : `the fake FCM answered ${JSON.stringify(t.fcm.sends)} (status: sends), not ${NOTIFICATIONS} 200s`;

/** A fan-out to FCM through the notifier against the same requests from a bare keep-alive https loop. */
export const benchmark: Benchmark = {
  name: NAME,
  figure: "notif/s",
  description:
    `${NOTIFICATIONS} alerts, ${IN_FLIGHT} in flight, to a local fake FCM v1 (HTTPS, Bearer checked) in its ` +
    "own process: Notifier.toTokens over push_tokens (badge kept in PostgreSQL, metrics) and the " +
    "FCM sender (node:https, keep-alive agent), vs a bare node:https keep-alive loop " +
    "posting the sender's very JSON, headers and access token; extra: the FCM sender alone (no " +
    "notifier, no database); p50/p99 per notification; goal ratio >= 0.7",
  async start(ctx: BenchContext) {
    const stack = await startPushStack(ctx, "fcm");
    const { rows, fakes } = stack;

    // one notification through the project records what the sender puts on the wire (its OAuth access
    // token fetched on the way): the baseline sends the same
    delivered(await stack.notifier.toToken(rows[0] as (typeof rows)[0], MESSAGE));
    const recorded = (await fakes.take()).fcm.last;
    if (!recorded) throw new Error("the fake FCM recorded no send");
    const bare = bareFcmClient({
      port: fakes.fcm.port,
      ca: fakes.fcm.ca,
      projectId: PROJECT_ID,
      headers: recorded.headers,
      body: recorded.body as { message: Record<string, unknown> },
    });
    ctx.defer(() => bare.close());
    console.error(
      `${NAME}: the FCM sender sends the headers ${Object.keys(recorded.headers).join(", ")} ` +
        `and a ${JSON.stringify(recorded.body).length}-byte JSON body`,
    );

    return pushFanOutSides(ctx, {
      name: NAME,
      stack,
      labels: {
        project: "notifier + FCM sender",
        bare: "bare https keep-alive",
        alone: "FCM sender alone",
      },
      check: allReached,
      bareSend: (token) => bare.send(token),
    });
  },
};
