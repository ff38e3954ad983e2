import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { Counter, Gauge, type Registry } from "prom-client";
import type { Config } from "#common/config/schema.ts";
import type { Listener, Subscription } from "#common/db/listener.ts";
import type { Pool } from "#common/db/pool.ts";
import type { Logger } from "#common/logger.ts";
import type { BuddyKind, ServiceStatus } from "../kinds/kind.ts";
import { BuddySession } from "./buddy-session.ts";
import { type DefinitionEntry, loadDefinitions } from "./definitions.ts";
import { Leases, type OwnedLease } from "./leases.ts";
import { LogRing, teeLogger } from "./log-ring.ts";

/**
 * One runner process: every tick it renews its leases, claims its share of free buddies, starts, restarts
 * and stops sessions to match the definitions and the operators' wishes, and reports their states. When it
 * cannot renew for nearly a lease (the database is away), it stops its buddies itself: another runner may
 * take them as soon as the leases expire, and a buddy must never be connected twice.
 */

export interface RunnerDeps {
  config: Config;
  pool: Pool;
  /** The process's LISTEN connection: a change of the `buddies` table or an admin action pokes a tick. */
  listener: Listener;
  log: Logger;
  kind: (name: string) => Promise<BuddyKind>;
  serviceStatus: () => Promise<ServiceStatus[]>;
  metrics: Registry;
}

/** NOTIFYed by the `buddies` table's trigger and by admin actions (actions.ts, admin/routes.ts). */
export const BUDDIES_CHANNEL = "buddies_changed";

interface Running {
  session: BuddySession;
  ring: LogRing;
  fingerprint: string;
  restartSeq: number;
}

/**
 * How long a runner that starts alone waits for others started with it: the runners of one deploy start
 * within a few hundred milliseconds of each other (test/bench/scaleout-buddies.bench.ts: 250/250 in every
 * round, against 1/499 in three of five without).
 */
const JOIN_MS = 1000;

export class Runner {
  readonly id = `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;
  adminUrl: string | null = null;
  readonly #deps: RunnerDeps;
  readonly #leases: Leases;
  readonly #running = new Map<string, Running>();
  /** Rings outlive sessions, so a stopped buddy's last lines stay readable here. */
  readonly #rings = new Map<string, LogRing>();
  #definitions = new Map<string, DefinitionEntry>();
  #timer: NodeJS.Timeout | undefined;
  #changes: Subscription | undefined;
  #ticking: Promise<void> | undefined;
  #again = false;
  /** A runner alone at its first tick claims nothing before this time (see #tick); 0 before that tick. */
  #claimAfter = 0;
  #stopped = false;
  #lastRenew = Date.now();
  #dirty = new Set<string>();
  readonly #states: Gauge<"state">;
  readonly #messages: Counter<"domain" | "username" | "direction">;
  readonly #reconnects: Counter<"domain" | "username">;
  readonly #counted = new Map<string, { in: number; out: number; reconnects: number }>();

  constructor(deps: RunnerDeps) {
    this.#deps = deps;
    this.#leases = new Leases(deps.pool, this.id, deps.config.buddies.cluster.leaseSeconds);
    const registers = [deps.metrics];
    this.#states = new Gauge({
      name: "buddies_sessions",
      help: "Buddies run by this process, by state",
      labelNames: ["state"] as const,
      registers,
      collect: () => {
        for (const s of ["online", "connecting", "backoff", "stopped"]) this.#states.set({ state: s }, 0);
        for (const r of this.#running.values()) this.#states.inc({ state: r.session.state });
      },
    });
    this.#messages = new Counter({
      name: "buddies_messages_total",
      help: "Chat and groupchat messages through each buddy",
      labelNames: ["domain", "username", "direction"] as const,
      registers,
    });
    this.#reconnects = new Counter({
      name: "buddies_reconnects_total",
      help: "Lost connections of each buddy",
      labelNames: ["domain", "username"] as const,
      registers,
    });
  }

  get definitions(): ReadonlyMap<string, DefinitionEntry> {
    return this.#definitions;
  }

  session(jid: string): BuddySession | undefined {
    return this.#running.get(jid)?.session;
  }

  logLines(jid: string) {
    return this.#rings.get(jid)?.lines();
  }

  /** Ticks from now on, and at every change NOTIFYed (or missed while the database was away). */
  start(): void {
    this.#changes ??= this.#deps.listener.subscribe([BUDDIES_CHANNEL], {
      onMessage: () => this.poke(),
      onReconnect: () => this.poke(),
    });
    this.#schedule(0);
  }

  /** Runs a tick now (after the one in progress): an admin action or a definition changed. */
  poke(): void {
    if (this.#stopped) return;
    if (this.#ticking) this.#again = true;
    else this.#schedule(0);
  }

  #schedule(ms: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#ticking = this.#tick().finally(() => {
        this.#ticking = undefined;
        if (this.#stopped) return;
        const joinIn = this.#claimAfter - Date.now();
        this.#schedule(this.#again ? 0 : joinIn > 0 ? joinIn : this.#deps.config.buddies.cluster.tickMs);
        this.#again = false;
      });
    }, ms);
  }

  async #tick(): Promise<void> {
    const { config, log } = this.#deps;
    try {
      const live = await this.#leases.heartbeat({
        host: hostname(),
        pid: process.pid,
        adminUrl: this.adminUrl,
      });
      // Runners started together (a deploy restarting them all) each counted only themselves and the first
      // claimed every buddy, which then moved over one per tick (500 buddies: 8 minutes on one runner). A
      // runner alone at its first tick waits JOIN_MS (or a tick, when shorter) for the others to say they are
      // there too, so the shares are even from the start; alone for real, its buddies connect that much later.
      if (this.#claimAfter === 0)
        this.#claimAfter = live === 1 ? Date.now() + Math.min(JOIN_MS, config.buddies.cluster.tickMs) : 1;
      const joining = live === 1 && Date.now() < this.#claimAfter;
      this.#definitions = await loadDefinitions(this.#deps.pool, config);
      const defined = [...this.#definitions.values()];
      await this.#leases.sync(defined);
      const owned = await this.#leases.renew();
      this.#lastRenew = Date.now();
      const ownedByJid = new Map(owned.map((o) => [`${o.username}@${o.domain}`, o]));
      for (const jid of [...this.#running.keys()]) {
        if (!ownedByJid.has(jid)) await this.#stopSession(jid, "lost its lease");
      }
      const runnable = defined.filter((d) => d.buddy);
      const share = Math.ceil(runnable.length / live);
      const active = owned.filter(
        (o) => !o.stopped && this.#definitions.get(`${o.username}@${o.domain}`)?.buddy,
      );
      const claimed = joining ? [] : await this.#leases.claim(share - active.length, runnable);
      for (const o of claimed) ownedByJid.set(`${o.username}@${o.domain}`, o);
      await this.#apply([...ownedByJid.values()], share);
      await this.#report();
    } catch (err) {
      log.error({ err }, "runner tick failed");
      const margin = this.#deps.config.buddies.cluster.tickMs;
      if (
        Date.now() - this.#lastRenew > config.buddies.cluster.leaseSeconds * 1000 - margin &&
        this.#running.size > 0
      ) {
        log.error("cannot renew leases: stopping every buddy here so that another runner can take them");
        await Promise.all(
          [...this.#running.keys()].map((jid) => this.#stopSession(jid, "lost the database")),
        );
      }
    }
  }

  async #apply(owned: OwnedLease[], share: number): Promise<void> {
    const release: OwnedLease[] = [];
    let kept = 0;
    for (const o of owned) {
      const jid = `${o.username}@${o.domain}`;
      const entry = this.#definitions.get(jid);
      const running = this.#running.get(jid);
      if (o.stopped || !entry?.buddy) {
        if (running)
          await this.#stopSession(
            jid,
            o.stopped ? "stopped by an operator" : (entry?.problem ?? "no longer defined"),
          );
        release.push(o);
        continue;
      }
      if (kept >= share && running?.session.state !== "online") {
        // over this runner's share (another runner joined): hand back those not serving anyone right now
        if (running) await this.#stopSession(jid, "handed to another runner");
        release.push(o);
        continue;
      }
      kept++;
      if (running && running.fingerprint === entry.fingerprint && running.restartSeq === o.restart_seq)
        continue;
      if (running)
        await this.#stopSession(jid, running.restartSeq !== o.restart_seq ? "restart" : "definition changed");
      this.#startSession(entry, o.restart_seq);
    }
    if (kept > share) {
      // still over: hand back online ones too, one per tick, so a cluster evens out. The shares (rounded
      // up) add up to at least the buddies, so a runner over its share means one under it to take it.
      const extra = owned.find((o) => this.#running.has(`${o.username}@${o.domain}`) && !release.includes(o));
      if (extra) {
        await this.#stopSession(`${extra.username}@${extra.domain}`, "handed to another runner");
        release.push(extra);
      }
    }
    await this.#leases.release(release);
  }

  #startSession(entry: DefinitionEntry, restartSeq: number): void {
    const buddy = entry.buddy;
    if (!buddy) return;
    let ring = this.#rings.get(entry.jid);
    if (!ring) {
      ring = new LogRing(this.#deps.config.buddies.logLines);
      this.#rings.set(entry.jid, ring);
    }
    const log = teeLogger(this.#deps.log.child({ buddy: entry.jid, kind: buddy.kind }), ring);
    const { config } = this.#deps;
    const session = new BuddySession({
      buddy,
      settings: {
        resource: config.buddies.resource,
        reconnect: config.buddies.reconnect,
        keepalive: config.buddies.keepalive,
      },
      log,
      kind: this.#deps.kind,
      serviceStatus: this.#deps.serviceStatus,
      secrets: config.secrets,
      isPeer: (jid) => jid !== entry.jid && this.#definitions.has(jid),
      onChange: () => {
        this.#dirty.add(entry.jid);
        this.#count(entry.jid, session);
      },
    });
    this.#running.set(entry.jid, { session, ring, fingerprint: entry.fingerprint, restartSeq });
    session.start();
  }

  #count(jid: string, s: BuddySession): void {
    const before = this.#counted.get(jid) ?? { in: 0, out: 0, reconnects: 0 };
    const labels = { domain: s.buddy.domain, username: s.buddy.username };
    if (s.messagesIn > before.in)
      this.#messages.inc({ ...labels, direction: "in" }, s.messagesIn - before.in);
    if (s.messagesOut > before.out)
      this.#messages.inc({ ...labels, direction: "out" }, s.messagesOut - before.out);
    if (s.reconnects > before.reconnects) this.#reconnects.inc(labels, s.reconnects - before.reconnects);
    this.#counted.set(jid, { in: s.messagesIn, out: s.messagesOut, reconnects: s.reconnects });
  }

  async #stopSession(jid: string, why: string): Promise<void> {
    const r = this.#running.get(jid);
    if (!r) return;
    this.#running.delete(jid);
    this.#counted.delete(jid);
    r.ring.push({ time: new Date().toISOString(), level: "info", msg: `stopping: ${why}` });
    this.#deps.log.info({ buddy: jid, why }, "stopping buddy");
    await r.session.stop();
  }

  async #report(): Promise<void> {
    const jids = [...this.#dirty].filter((j) => this.#running.has(j));
    this.#dirty.clear();
    await this.#leases.report(
      jids.map((jid) => {
        const s = (this.#running.get(jid) as Running).session;
        return {
          domain: s.buddy.domain,
          username: s.buddy.username,
          state: s.state,
          connectedSince: s.connectedSince,
          lastError: s.lastError,
          messagesIn: s.messagesIn,
          messagesOut: s.messagesOut,
          reconnects: s.reconnects,
        };
      }),
    );
  }

  /** SIGTERM: no more ticks, every buddy signs off, the leases go back for another runner at once. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#changes?.close();
    clearTimeout(this.#timer);
    await this.#ticking;
    await Promise.all([...this.#running.keys()].map((jid) => this.#stopSession(jid, "runner shutting down")));
    await this.#leases.releaseAll().catch((err) => this.#deps.log.warn({ err }, "could not release leases"));
  }
}
