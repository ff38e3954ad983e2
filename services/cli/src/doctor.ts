import { spawn } from "node:child_process";
import { randomBytes, X509Certificate } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { Readable } from "node:stream";
import { text } from "node:stream/consumers";
import { parse as parseYaml } from "yaml";
import type { AuthCore } from "#auth";
import { formatMismatches } from "#common/config/mongooseim.ts";
import type { Config } from "#common/config/schema.ts";
import type { Listener } from "#common/db/listener.ts";
import { MIGRATIONS_DIR, MIGRATIONS_TABLE } from "#common/db/migrate.ts";
import type { Pool } from "#common/db/pool.ts";
import type { Logger } from "#common/logger.ts";
import { newKey } from "#common/media/keys.ts";
import { createStorage } from "#common/media/storage-registry.ts";
import { fromRoot } from "#common/paths.ts";
import type { ProviderEndpoints } from "../../http-utility/src/push/senders/registry.ts";

/**
 * `sidecars doctor`: a deployment checked the way an operator would before switching traffic to it. Each
 * check answers OK, WARN or FAIL with what it saw and, unless OK, what to do. Checks never change what a user
 * would notice: the probes are an unknown user, a stored object deleted at once, and FCM's dry run.
 */

export type Status = "ok" | "warn" | "fail";

export interface CheckResult {
  check: string;
  status: Status;
  detail: string;
  /** What to do about a WARN or FAIL. */
  fix?: string;
  ms: number;
}

export interface DoctorDeps {
  config: Config;
  log: Logger;
  /** The database; a rejection is the database check's FAIL, and the checks that need it are skipped. */
  pool: () => Promise<Pool>;
  listener: () => Promise<Listener>;
  authCore: (pool: Pool, listener: Listener) => Promise<AuthCore>;
  /** Bound on each network call. */
  timeoutMs: number;
  /** Tests only: the providers' local stand-ins. */
  endpoints?: ProviderEndpoints;
  /** Certificates expiring within this many days are a WARN. */
  certificateWarnDays?: number;
  /**
   * ejabberd's config: when it exists and says `auth_method: external`, its `extauth_program` is run and asked
   * as ejabberd asks it. Absent, the check is left out.
   */
  ejabberdConfig?: string | undefined;
}

type Outcome = Omit<CheckResult, "check" | "ms">;
const ok = (detail: string): Outcome => ({ status: "ok", detail });
const warn = (detail: string, fix: string): Outcome => ({ status: "warn", detail, fix });
const fail = (detail: string, fix: string): Outcome => ({ status: "fail", detail, fix });

/** A probe user that no one has: its `user_exists` answers false on a healthy backend. */
const probeUser = () => `sidecars-doctor-${randomBytes(6).toString("hex")}`;

export async function runDoctor(deps: DoctorDeps): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const run = async (check: string, fn: () => Promise<Outcome | Outcome[]>): Promise<void> => {
    const started = performance.now();
    let outcomes: Outcome[];
    try {
      const o = await fn();
      outcomes = Array.isArray(o) ? o : [o];
    } catch (err) {
      outcomes = [fail(`the check itself failed: ${(err as Error).message}`, "see the message")];
    }
    const ms = Math.round(performance.now() - started);
    for (const o of outcomes) results.push({ check, ...o, ms });
  };
  const { config } = deps;

  let pool: Pool | undefined;
  await run("database", async () => {
    try {
      pool = await deps.pool();
    } catch (err) {
      return fail(
        `not reachable: ${(err as Error).message}`,
        "start PostgreSQL or fix DATABASE_URL (docs/database.md)",
      );
    }
    return migrationsOutcome(pool);
  });

  let core: AuthCore | undefined;
  if (pool) {
    const p = pool;
    core = await deps
      .listener()
      .then((l) => deps.authCore(p, l))
      .catch(() => undefined);
    for (const [name, domain] of Object.entries(config.domains)) {
      await run(`domain ${name}`, async () => {
        if (!core)
          return fail("the login core could not start", "run `sidecars doctor` again with LOG_LEVEL=debug");
        const probe = probeUser();
        const answer = await withTimeout(core.userExists({ node: probe, domain: name }), deps.timeoutMs);
        if (answer === "timeout") {
          return fail(
            `the ${domain.authenticator.kind} authenticator did not answer within ${deps.timeoutMs} ms`,
            "check the backend it calls (its URL, the network, its logs)",
          );
        }
        // a token domain has no directory to ask: every user exists by design (docs/auth.md "Token (JWT) domains")
        if (answer && core.everyUserExists(name))
          return ok(
            `the ${domain.authenticator.kind} authenticator answers (every user exists by design, format ${domain.passwordFormat})`,
          );
        return answer
          ? warn(
              `the ${domain.authenticator.kind} authenticator says a made-up user (${probe}) exists`,
              "check the backend: it answers true for anyone",
            )
          : ok(`the ${domain.authenticator.kind} authenticator answers (format ${domain.passwordFormat})`);
      });
      const mismatches = formatMismatches(name, domain);
      if (mismatches.length > 0) {
        await run(`domain ${name}`, async () =>
          mismatches.map((m) =>
            warn(m, "`sidecars domains example --mongooseim <version>` prints settings that fit"),
          ),
        );
      }
    }
    if (Object.keys(config.domains).length === 0) {
      await run("domains", async () =>
        warn(
          "no domain is configured",
          "add one under domains in config/<env>.json, or `sidecars domains add`",
        ),
      );
    }
  }
  await core?.close().catch(() => {});

  await run("auth service", () => authServiceOutcome(deps));
  await run("http-utility", async () => {
    const s = config.services.httpUtility;
    const tls = s.tls.cert !== undefined;
    return healthOutcome(`${tls ? "https" : "http"}://${connectHost(s.host)}:${s.port}/healthz`, deps);
  });
  await run("buddies", async () => {
    const s = config.services.buddies;
    return healthOutcome(`http://${connectHost(s.host)}:${s.port}/healthz`, deps);
  });
  await run("storage", () => storageOutcome(config, deps.log));
  const legacyRoot = config.media.legacyRoot;
  if (legacyRoot) await run("legacy media", async () => legacyRootOutcome(fromRoot(legacyRoot)));
  await run("certificates", async () => certificateOutcomes(config, deps.certificateWarnDays ?? 21));
  await run("push", () => pushOutcomes(deps));
  const ejabberd = deps.ejabberdConfig;
  if (ejabberd && existsSync(ejabberd)) await run("ejabberd extauth", () => extauthOutcome(ejabberd, deps));
  return results;
}

async function migrationsOutcome(pool: Pool): Promise<Outcome> {
  const files = readdirSync(MIGRATIONS_DIR)
    .filter((f) => /\.(sql|js|ts)$/.test(f))
    .map((f) => f.replace(/\.(sql|js|ts)$/, ""));
  const applied = await pool
    .query<{ name: string }>(`SELECT name FROM ${MIGRATIONS_TABLE}`)
    .then((r) => new Set(r.rows.map((row) => row.name)))
    .catch(() => new Set<string>());
  const pending = files.filter((f) => !applied.has(f));
  if (pending.length > 0) {
    return fail(
      `reachable; ${pending.length} of ${files.length} migrations not applied (${pending.slice(0, 3).join(", ")}${pending.length > 3 ? ", …" : ""})`,
      "run `sidecars migrate` (the services also migrate when they start)",
    );
  }
  return ok(`reachable; all ${files.length} migrations applied`);
}

/** The call MongooseIM makes (GET <path_prefix>user_exists with its basic_auth), for the first domain. */
async function authServiceOutcome(deps: DoctorDeps): Promise<Outcome> {
  const s = deps.config.services.auth;
  const domain = Object.keys(deps.config.domains)[0] ?? "localhost";
  const url = `http://${connectHost(s.host)}:${s.port}${s.pathPrefix}user_exists?user=${probeUser()}&server=${encodeURIComponent(domain)}`;
  const headers: Record<string, string> = s.basicAuth
    ? { authorization: `Basic ${Buffer.from(s.basicAuth).toString("base64")}` }
    : {};
  const shown = url.replace(/\?.*/, "");
  const answer = await get(url, headers, deps.timeoutMs);
  if ("error" in answer) {
    return fail(
      `${shown}: ${answer.error}`,
      "start the services (`npm start`, or pm2 with ecosystem.config.js) or fix services.auth.host/port",
    );
  }
  if (answer.status === 401) {
    return fail(
      `${shown}: 401 with services.auth.basicAuth ${s.basicAuth ? "as configured" : "unset"}`,
      "the running auth service has another basic_auth than this config: MongooseIM's basic_auth, AUTH_BASIC_AUTH and the config must agree",
    );
  }
  if (answer.status === 404) {
    return fail(
      `${shown}: 404`,
      `the running service does not serve path_prefix ${s.pathPrefix}: MongooseIM's path_prefix and services.auth.pathPrefix must agree`,
    );
  }
  if (answer.status !== 200 || answer.body !== "false") {
    return fail(
      `${shown}: HTTP ${answer.status} "${answer.body.slice(0, 80)}"`,
      "read the auth service's log",
    );
  }
  if (!s.basicAuth) {
    return warn(
      `${shown} answers as MongooseIM expects, without basic_auth`,
      "set AUTH_BASIC_AUTH (and MongooseIM's basic_auth) so that no other local process can ask",
    );
  }
  return ok(`${shown} answers as MongooseIM expects (basic_auth, path_prefix ${s.pathPrefix})`);
}

async function healthOutcome(url: string, deps: DoctorDeps): Promise<Outcome> {
  const answer = await get(url, {}, deps.timeoutMs);
  if ("error" in answer) {
    return fail(
      `${url}: ${answer.error}`,
      "start the services (`npm start`, or pm2 with ecosystem.config.js)",
    );
  }
  if (answer.status !== 200) return fail(`${url}: HTTP ${answer.status}`, "read the service's log");
  return ok(`${url} answers`);
}

/** Writes, reads back and deletes a probe object; fs also reports its free space against the reserve. */
async function storageOutcome(config: Config, log: Logger): Promise<Outcome[]> {
  const storage = await createStorage(config.media.storage, { log });
  try {
    const key = newKey("txt");
    const bytes = randomBytes(32).toString("hex");
    try {
      await storage.put(key, Readable.from([Buffer.from(bytes)]), { contentType: "text/plain" });
      const back = await text(await storage.get(key));
      if (back !== bytes)
        return [fail(`${storage.kind}: a probe object read back differently`, "check the storage backend")];
    } catch (err) {
      return [
        fail(
          `${storage.kind}: cannot write and read back a probe object: ${(err as Error).message}`,
          "check media.storage (the folder's owner and permissions, or the bucket's credentials)",
        ),
      ];
    } finally {
      await storage.delete(key).catch(() => {});
    }
    const out: Outcome[] = [ok(`${storage.kind}: writable (a probe object written, read back, deleted)`)];
    const free = await storage.freeBytes?.();
    if (free !== undefined) {
      const reserve = config.media.freeSpaceReserveBytes;
      const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;
      out.push(
        free <= reserve
          ? fail(
              `${gib(free)} free, at or below the ${gib(reserve)} reserve: uploads are refused`,
              "free space, or `sidecars media gc`",
            )
          : free <= reserve * 2
            ? warn(
                `${gib(free)} free, the reserve is ${gib(reserve)}`,
                "free space soon (`sidecars purge --dry-run` shows what retention would delete)",
              )
            : ok(`${gib(free)} free (reserve ${gib(reserve)})`),
      );
    }
    return out;
  } finally {
    await storage.close();
  }
}

function certificateOutcomes(config: Config, warnDays: number): Outcome[] {
  const tls = config.services.httpUtility.tls;
  if (tls.cert === undefined) {
    return [ok("http-utility serves plain HTTP (TLS is terminated in front of it, or not used)")];
  }
  const path = fromRoot(tls.cert);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(readFileSync(path));
  } catch (err) {
    return [
      fail(`${tls.cert}: ${(err as Error).message}`, "fix services.httpUtility.tls.cert (a PEM certificate)"),
    ];
  }
  const days = Math.floor((Date.parse(cert.validTo) - Date.now()) / 86_400_000);
  const subject = cert.subject.replace(/\n/g, ", ");
  if (days < 0)
    return [
      fail(
        `${tls.cert} (${subject}) expired on ${cert.validTo}`,
        "renew it; the service reloads it by itself",
      ),
    ];
  if (days < warnDays) {
    return [
      warn(
        `${tls.cert} (${subject}) expires in ${days} days (${cert.validTo})`,
        "renew it; the service reloads it by itself",
      ),
    ];
  }
  return [ok(`${tls.cert} (${subject}) valid for ${days} more days`)];
}

/** Each sender's credentials: FCM's dry run (validate_only) to a made-up token; APNs has no dry run. */
async function pushOutcomes(deps: DoctorDeps): Promise<Outcome[]> {
  const apps = deps.config.push.apps;
  if (Object.keys(apps).length === 0) return [ok("no push app configured")];
  const { createPushSenders, closePushSenders } = await import(
    "../../http-utility/src/push/senders/registry.ts"
  );
  let senders: Awaited<ReturnType<typeof createPushSenders>>;
  try {
    senders = createPushSenders(apps, {
      log: deps.log,
      env: deps.config.env,
      secrets: deps.config.secrets,
      ...(deps.endpoints ? { endpoints: deps.endpoints } : {}),
    });
  } catch (err) {
    return [fail((err as Error).message, "fix push.apps (docs/push.md)")];
  }
  try {
    const out: Outcome[] = [];
    for (const [app, byService] of senders) {
      for (const [service, sender] of byService) {
        const where = `${app} ${service}`;
        if (!sender.check) {
          out.push(
            ok(`${where}: credentials read (the first push proves them: ${service} offers no dry run)`),
          );
          continue;
        }
        const r = await withTimeout(sender.check(), deps.timeoutMs);
        if (r === "timeout")
          out.push(
            warn(
              `${where}: no answer within ${deps.timeoutMs} ms`,
              "check the outbound network to the provider",
            ),
          );
        else if (r.status === "ok") out.push(ok(`${where}: ${r.detail}`));
        else if (r.status === "unreachable")
          out.push(warn(`${where}: ${r.detail}`, "check the outbound network to the provider"));
        else out.push(fail(`${where}: ${r.detail}`, `fix push.apps.${app} (docs/push.md)`));
      }
    }
    return out;
  } finally {
    await closePushSenders(senders);
  }
}

/**
 * ejabberd's external auth (docs/auth.md "ejabberd"): the `extauth_program` its config names, started as
 * ejabberd starts it and asked `isuser` of a made-up user in the first domain, in the protocol's framing
 * (a 2-byte big-endian length, then `isuser:<user>:<server>`; the answer: length 2, then 0 or 1).
 */
async function extauthOutcome(file: string, deps: DoctorDeps): Promise<Outcome> {
  let parsed: unknown;
  try {
    parsed = parseYaml(readFileSync(file, "utf8"));
  } catch (err) {
    return fail(`${file}: ${(err as Error).message}`, "fix the YAML of ejabberd's config");
  }
  const yml = (parsed ?? {}) as { auth_method?: unknown; extauth_program?: unknown };
  const methods = Array.isArray(yml.auth_method) ? yml.auth_method : [yml.auth_method];
  if (!methods.includes("external")) return ok(`${file}: ejabberd does not use external auth`);
  if (typeof yml.extauth_program !== "string" || yml.extauth_program.trim() === "") {
    return fail(
      `${file}: auth_method external without extauth_program`,
      "set extauth_program (docs/auth.md)",
    );
  }
  const domain = Object.keys(deps.config.domains)[0];
  if (!domain) return warn("no domain configured to ask about", "add a domain under domains");
  const program = yml.extauth_program;
  const answer = await askExtauth(program, `isuser:${probeUser()}:${domain}`, deps.timeoutMs);
  if ("error" in answer) {
    return fail(
      `${program}: ${answer.error}`,
      "run it by hand as ejabberd's user and read its stderr (docs/auth.md)",
    );
  }
  return answer.result === 0
    ? ok(`${program} answers isuser as ejabberd asks it`)
    : warn(
        `${program} says a made-up user of ${domain} exists`,
        "check the domain's backend: it answers true for anyone",
      );
}

function askExtauth(
  program: string,
  request: string,
  timeoutMs: number,
): Promise<{ result: number } | { error: string }> {
  return new Promise((resolve) => {
    // ejabberd starts the program through a shell (open_port spawn): a path with arguments works the same here
    const child = spawn("/bin/sh", ["-c", `exec ${program}`], { stdio: ["pipe", "pipe", "pipe"] });
    let out = Buffer.alloc(0);
    let err = "";
    const done = (r: { result: number } | { error: string }) => {
      clearTimeout(timer);
      child.kill("SIGTERM");
      resolve(r);
    };
    const timer = setTimeout(() => done({ error: `no answer within ${timeoutMs} ms` }), timeoutMs);
    child.stdout.on("data", (c: Buffer) => {
      out = Buffer.concat([out, c]);
      if (out.length >= 4) {
        done(
          out.readUInt16BE(0) === 2 ? { result: out.readUInt16BE(2) } : { error: "not the extauth framing" },
        );
      }
    });
    child.stderr.on("data", (c: Buffer) => {
      if (err.length < 2000) err += c.toString();
    });
    child.on("error", (e) => done({ error: e.message }));
    child.on("exit", (code) =>
      done({ error: `exited (${code}) before answering${err ? `: ${err.trim().split("\n").at(-1)}` : ""}` }),
    );
    const body = Buffer.from(request, "utf8");
    const frame = Buffer.alloc(2 + body.length);
    frame.writeUInt16BE(body.length, 0);
    body.copy(frame, 2);
    child.stdin.on("error", () => {});
    child.stdin.write(frame);
  });
}

/**
 * `media.legacyRoot`, where imported legacy files are read (docs/attachments.md "Importing legacy media"): a
 * directory this process can list, holding at least one of the kind directories.
 */
function legacyRootOutcome(root: string): Outcome {
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch (err) {
    return fail(
      `media.legacyRoot ${root}: ${(err as Error).message}`,
      "mount the legacy media there (read-only is enough) or fix media.legacyRoot; imported files answer 404 meanwhile",
    );
  }
  const kinds = ["pictures", "videos", "avatars"].filter((k) => entries.includes(k));
  return kinds.length > 0
    ? ok(`media.legacyRoot ${root} holds ${kinds.join(", ")}`)
    : warn(
        `media.legacyRoot ${root} holds none of pictures/, videos/, avatars/`,
        "check that the legacy media are mounted there",
      );
}

/** Where to reach a service that listens on `host`: an unspecified address is reached on loopback. */
function connectHost(host: string): string {
  if (host === "0.0.0.0" || host === "") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host.includes(":") ? `[${host}]` : host;
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A GET of our own service. The certificate is not verified here (a loopback address is not the name it was
 * issued for); the certificates check reads it.
 */
function get(
  url: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const client = url.startsWith("https:") ? https : http;
    const req = client.get(url, { headers, timeout: timeoutMs, rejectUnauthorized: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.length < 64 && chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("error", (err) => resolve({ error: err.message }));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (err: NodeJS.ErrnoException) =>
      resolve({
        error:
          err.code === "ECONNREFUSED"
            ? "connection refused (not running?)"
            : err.code === "ECONNRESET"
              ? "the connection was cut without an answer (another program on that port?)"
              : err.message,
      }),
    );
  });
}
