import type {
  PushMessage,
  PushSender,
  PushSenders,
  PushService,
  SendOutcome,
} from "../../services/http-utility/src/push/senders/sender.ts";

/**
 * A `PushSender` for the notifier and route tests: records every push and answers what the test scripted
 * for the token (outcomes consumed in order, the last one repeating), `sent` otherwise.
 */
export class ScriptedPushSender implements PushSender {
  readonly service: PushService;
  readonly pushes: { token: string; message: PushMessage }[] = [];
  /** Pushes in flight now, and the most there ever were. */
  inFlight = 0;
  maxInFlight = 0;
  #scripts = new Map<string, SendOutcome[]>();
  #throws = new Set<string>();
  #latencyMs: number;
  #sent = 0;

  constructor(service: PushService, options: { latencyMs?: number } = {}) {
    this.service = service;
    this.#latencyMs = options.latencyMs ?? 0;
  }

  /** Answer the next pushes to `token` with these outcomes, in order; the last one repeats. */
  script(token: string, ...outcomes: SendOutcome[]): this {
    this.#scripts.set(token, [...outcomes]);
    return this;
  }

  /** Make pushes to `token` throw (a sender bug). */
  throwFor(token: string): this {
    this.#throws.add(token);
    return this;
  }

  pushesTo(token: string): PushMessage[] {
    return this.pushes.filter((p) => p.token === token).map((p) => p.message);
  }

  async send(token: string, message: PushMessage): Promise<SendOutcome> {
    this.pushes.push({ token, message });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.#latencyMs > 0) await new Promise((r) => setTimeout(r, this.#latencyMs));
      if (this.#throws.has(token)) throw new Error(`scripted sender failure for ${token}`);
      const script = this.#scripts.get(token);
      const outcome = script && (script.length > 1 ? script.shift() : script[0]);
      return outcome ?? { status: "sent", id: `${this.service}-${++this.#sent}` };
    } finally {
      this.inFlight--;
    }
  }

  async close(): Promise<void> {}
}

/** Senders by app, as `createPushSenders` answers them. */
export function sendersOf(apps: Record<string, ScriptedPushSender[]>): PushSenders {
  return new Map(
    Object.entries(apps).map(([app, senders]) => [app, new Map(senders.map((s) => [s.service, s]))]),
  );
}
