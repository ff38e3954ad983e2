import { type Client, xml } from "@xmpp/client";
import { type BuddiesBench, DOMAIN, username } from "./buddies-support.ts";
import { bareClient, goOffline, goOnline } from "./buddies-xmpp-client.ts";
import type { BenchContext } from "./frame.ts";

/** Clients in the bench process that send chats and time the answers. */
export interface Probes {
  /** Closed loop: each probe keeps one chat in flight to `targets` in turn for `durationS`. */
  echoLoad(
    targets: readonly string[],
    durationS: number,
  ): Promise<{ count: number; p50Ms: number; p99Ms: number }>;
}

const ECHO_TIMEOUT_MS = 10_000;

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

export async function startProbes(ctx: BenchContext, b: BuddiesBench, count: number): Promise<Probes> {
  const clients: Array<{ xmpp: Client; waiting: Map<string, (from: string) => void> }> = [];
  ctx.defer(() => Promise.all(clients.map((c) => goOffline(c.xmpp))));
  for (let i = 0; i < count; i++) {
    const xmpp = bareClient({
      service: b.service,
      ca: b.ej.ca,
      domain: DOMAIN,
      username: username("probe", i),
      password: b.password,
      resource: "probe",
    });
    const waiting = new Map<string, (from: string) => void>();
    xmpp.on("error", () => {});
    xmpp.on("stanza", (stanza) => {
      if (!stanza.is("message")) return;
      const body = stanza.getChildText("body");
      const answered = body === null ? undefined : waiting.get(body);
      if (answered) {
        waiting.delete(body as string);
        answered(String(stanza.attrs.from ?? ""));
      }
    });
    clients.push({ xmpp, waiting });
    await goOnline(xmpp, { service: b.service, domain: DOMAIN });
  }
  let seq = 0;
  let next = 0;
  return {
    async echoLoad(targets, durationS) {
      const deadline = performance.now() + durationS * 1000;
      const latencies: number[] = [];
      await Promise.all(
        clients.map(async ({ xmpp, waiting }, p) => {
          while (performance.now() < deadline) {
            const to = targets[next++ % targets.length] as string;
            const body = `rt ${p} ${seq++}`;
            const t0 = performance.now();
            const from = await new Promise<string>((resolve, reject) => {
              const timer = setTimeout(() => {
                waiting.delete(body);
                reject(new Error(`${to} did not echo within ${ECHO_TIMEOUT_MS / 1000} s`));
              }, ECHO_TIMEOUT_MS);
              waiting.set(body, (f) => {
                clearTimeout(timer);
                resolve(f);
              });
              xmpp.send(xml("message", { to, type: "chat" }, xml("body", {}, body))).catch(reject);
            });
            latencies.push(performance.now() - t0);
            if (from.split("/")[0] !== to) throw new Error(`the echo to ${to} came from ${from}`);
          }
        }),
      );
      latencies.sort((x, y) => x - y);
      const round = (ms: number) => Math.round(ms * 100) / 100;
      return {
        count: latencies.length,
        p50Ms: round(percentile(latencies, 50)),
        p99Ms: round(percentile(latencies, 99)),
      };
    },
  };
}
