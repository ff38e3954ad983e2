import type { TokenResult } from "../../services/http-utility/src/push/notifier.ts";
import type { SendOutcome } from "../../services/http-utility/src/push/senders/sender.ts";
import type { BenchContext, Benchmark } from "./frame.ts";
import { bareApnsClient } from "./push-bare-clients.ts";
import type { FakesTaken } from "./push-fakes-process.ts";
import { IN_FLIGHT, MESSAGE, NOTIFICATIONS, pushFanOutSides, startPushStack } from "./push-fanout-support.ts";

const NAME = "push-fanout-apns";

const delivered = (r: TokenResult | SendOutcome) => {
  if (r.status !== "sent") throw new Error(`not sent: ${r.status} ${"reason" in r ? r.reason : ""}`);
};

const allReached = (t: FakesTaken) =>
  t.apns.count === NOTIFICATIONS
    ? undefined
    : `the fake APNs accepted ${t.apns.count} notifications, not ${NOTIFICATIONS}`;

/** A fan-out to APNs through the notifier against the same requests from a bare HTTP/2 client. */
export const benchmark: Benchmark = {
  name: NAME,
  figure: "notif/s",
  description:
    `${NOTIFICATIONS} alerts, ${IN_FLIGHT} in flight, to a local fake APNs (HTTP/2, TLS, ES256 JWT checked ` +
    "per request) in its own process: Notifier.toTokens over push_tokens (badge kept in PostgreSQL, metrics) " +
    "and the APNs sender (node:http2), vs a bare node:http2 session sending the sender's very headers, JWT " +
    "and payload; extra: the APNs sender alone (no notifier, no database); p50/p99 per notification; goal " +
    "ratio >= 0.7",
  async start(ctx: BenchContext) {
    const stack = await startPushStack(ctx, "apns");
    const { rows, fakes } = stack;

    // one notification through the project records what the sender puts on the wire: the baseline sends it
    delivered(await stack.notifier.toToken(rows[0] as (typeof rows)[0], MESSAGE));
    const recorded = (await fakes.take()).apns.last;
    if (!recorded) throw new Error("the fake APNs recorded no request");
    const bare = bareApnsClient({
      port: fakes.apns.port,
      ca: fakes.apns.ca,
      headers: recorded.headers,
      body: JSON.stringify(recorded.body),
    });
    ctx.defer(() => bare.close());
    console.error(
      `${NAME}: the APNs sender sends ${JSON.stringify(recorded.headers).length} bytes of headers ` +
        `(${Object.keys(recorded.headers).join(", ")}), a ${JSON.stringify(recorded.body).length}-byte payload`,
    );

    return pushFanOutSides(ctx, {
      name: NAME,
      stack,
      labels: { project: "notifier + APNs sender", bare: "bare node:http2", alone: "APNs sender alone" },
      check: allReached,
      bareSend: (token) => bare.send(token),
    });
  },
};
