import { Counter, Gauge, type Registry } from "prom-client";

/**
 * The app server's metrics, beside the notifier's `push_sends_total` (which counts what reached FCM and
 * APNs). Label values are bounded: `domain` is a key of `push.xep0357.domains`, the others are the lists
 * below.
 */

export type PublishOutcome =
  | "sent"
  | "dead_token"
  | "not_sent"
  | "forbidden"
  | "unknown_node"
  | "bad_request";
export type RegistrationOutcome = "registered" | "refused" | "unregistered" | "forbidden" | "bad_request";

export interface Xep0357Metrics {
  publishes: Counter<"domain" | "outcome">;
  registrations: Counter<"domain" | "command" | "outcome">;
  connected: Gauge<"domain">;
}

const known = new WeakMap<Registry, Xep0357Metrics>();

export function xep0357Metrics(registry: Registry): Xep0357Metrics {
  const existing = known.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const metrics: Xep0357Metrics = {
    publishes: new Counter({
      name: "xep0357_publishes_total",
      help: "XEP-0357 publishes received from XMPP servers, by domain and what became of them",
      labelNames: ["domain", "outcome"] as const,
      registers,
    }),
    registrations: new Counter({
      name: "xep0357_registrations_total",
      help: "register-push-*/unregister-push-* commands, by domain, command and outcome",
      labelNames: ["domain", "command", "outcome"] as const,
      registers,
    }),
    connected: new Gauge({
      name: "xep0357_component_connected",
      help: "1 while this process holds the domain's component connected to its XMPP server (a cluster's sum: 1)",
      labelNames: ["domain"] as const,
      registers,
    }),
  };
  known.set(registry, metrics);
  return metrics;
}
