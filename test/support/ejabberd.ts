import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { makeCertificate } from "./certificates.ts";
import { freePort } from "./free-port.ts";
import { ROOT } from "./processes.ts";
import { runAs } from "./run-as.ts";
import { trustingClient } from "./trusting-client.ts";

/**
 * A private ejabberd 23.01 (Debian package, installed by scripts/system-deps.sh) for one test file, run as
 * the `ejabberd` user with `auth_method: external` pointing at our `sidecars extauth`. Erlang distribution
 * on a fixed port (ERL_DIST_PORT), so no epmd daemon is started or left behind.
 */

const run = promisify(execFile);
const CTL = "/usr/sbin/ejabberdctl";
const USER = "ejabberd";
/** su's child gets this environment, and through it ejabberd (the extauth wrapper clears it anyway). */

/** Why the ejabberd suites cannot run here, or undefined when they can. */
export function ejabberdUnavailable(): string | undefined {
  if (!existsSync(CTL)) return "ejabberd is not installed: run scripts/system-deps.sh as root";
  if (process.getuid?.() !== 0) return "starting ejabberd as its own user needs root (su ejabberd)";
  return undefined;
}

export interface EjabberdOptions {
  hosts: string[];
  /** Environment of the extauth program (`sidecars extauth`): DATABASE_URL, APP_ENV, CONFIG_DIR… */
  extauthEnv: (dir: string) => Record<string, string>;
  /** Files written into the private folder before it starts (relative path → content), e.g. a config dir. */
  files?: Record<string, string>;
  /** Bound on the extauth program's answers (its --timeout-ms). */
  extauthTimeoutMs?: number;
  /** YAML of ejabberd's `modules` mapping (its lines at column 0, e.g. `mod_ping: {}`); none by default. */
  modules?: string;
  /** YAML of more `listen` entries (`-` items at column 0), e.g. an `ejabberd_service` on a port of the test's. */
  listen?: string;
}

export interface Ejabberd {
  /** c2s with direct TLS (XEP-0368): what `login()` uses. */
  tlsPort: number;
  /** c2s with STARTTLS, as MongooseIM and ejabberd serve port 5222. */
  starttlsPort: number;
  /** PEM of the self-signed certificate ejabberd presents (for 127.0.0.1 and localhost). */
  ca: string;
  dir: string;
  /** ejabberd's log and the extauth programs' stderr, for a failure message. */
  logs(): Promise<string>;
  /** OS pids of every extauth program started so far. */
  extauthPids(): Promise<number[]>;
  /** Runs `ejabberdctl <cmd>` against this node (e.g. `connected_users`). */
  ctl(cmd: string): Promise<{ code: number; out: string }>;
  /** Stops ejabberd and starts it again on the same ports, folder and spool: every client is cut off. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

function ejabberdYml(o: {
  dir: string;
  hosts: string[];
  tlsPort: number;
  starttlsPort: number;
  modules: string | undefined;
  listen?: string | undefined;
}): string {
  const j = JSON.stringify;
  return `hosts:
${o.hosts.map((h) => `  - ${j(h)}`).join("\n")}
loglevel: info
certfiles:
  - ${j(path.join(o.dir, "ejabberd.pem"))}
listen:
  -
    port: ${o.tlsPort}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    tls: true
  -
    port: ${o.starttlsPort}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls: true
${(o.listen ?? "").replace(/^(?=.)/gm, "  ")}
auth_method: external
extauth_program: ${j(path.join(o.dir, "extauth.sh"))}
# one program for all hosts (the default is one pool per host, one program per core in each)
extauth_pool_name: sidecars
extauth_pool_size: 1
auth_use_cache: false
acme:
  auto: false
${o.modules === undefined ? "modules: {}" : `modules:\n${o.modules.replace(/^(?=.)/gm, "  ")}`}
`;
}

/** The extauth program: a clean environment, our CLI on the project's Node, stderr into logs/. */
function extauthWrapper(dir: string, env: Record<string, string>, timeoutMs: number | undefined): string {
  const vars = Object.entries({ PATH: "/usr/bin:/bin", LANG: "C.UTF-8", ...env })
    .map(([k, v]) => `${k}=${quote(v)}`)
    .join(" ");
  const args = [process.execPath, path.join(ROOT, "bin/sidecars.js"), "extauth"];
  if (timeoutMs !== undefined) args.push("--timeout-ms", String(timeoutMs));
  return `#!/bin/sh
echo $$ >> ${quote(path.join(dir, "logs/extauth.pids"))}
exec env -i ${vars} ${args.map(quote).join(" ")} 2>> ${quote(path.join(dir, "logs/extauth.log"))}
`;
}

const asUser = (command: string) => runAs(USER, command);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startEjabberd(o: EjabberdOptions): Promise<Ejabberd> {
  const why = ejabberdUnavailable();
  if (why) throw new Error(why);
  const dir = await mkdtemp(path.join(tmpdir(), "sidecars-ejabberd-"));
  if (!/^[\w/.-]+$/.test(dir)) throw new Error(`${dir}: ejabberdctl needs a path without spaces or quotes`);
  const [tlsPort, starttlsPort, distPort] = [await freePort(), await freePort(), await freePort()];
  const node = `sidecars${randomBytes(4).toString("hex")}@localhost`;
  const cert = await makeCertificate("localhost", o.hosts);

  await mkdir(path.join(dir, "spool"));
  await mkdir(path.join(dir, "logs"));
  await writeFile(path.join(dir, "ejabberd.pem"), `${cert.cert}\n${cert.key}`, { mode: 0o600 });
  await copyFile("/etc/ejabberd/inetrc", path.join(dir, "inetrc"));
  await writeFile(
    path.join(dir, "ejabberd.yml"),
    ejabberdYml({ dir, hosts: o.hosts, tlsPort, starttlsPort, modules: o.modules, listen: o.listen }),
  );
  // read by ejabberdctl (--config-dir): distribution on a fixed loopback port instead of epmd, a pid file
  await writeFile(
    path.join(dir, "ejabberdctl.cfg"),
    `ERL_DIST_PORT=${distPort}\nINET_DIST_INTERFACE=127.0.0.1\nEJABBERD_PID_PATH=${dir}/ejabberd.pid\n`,
  );
  for (const [name, content] of Object.entries(o.files ?? {})) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), content);
  }
  await writeFile(path.join(dir, "extauth.sh"), extauthWrapper(dir, o.extauthEnv(dir), o.extauthTimeoutMs), {
    mode: 0o700,
  });
  const { stdout } = await run("id", ["-u", USER]);
  const { stdout: gid } = await run("id", ["-g", USER]);
  await run("chown", ["-R", `${stdout.trim()}:${gid.trim()}`, dir]);

  const readable = await asUser(
    `test -x ${quote(process.execPath)} && test -r ${quote(ROOT)}/bin/sidecars.js`,
  );
  if (readable.code !== 0) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(
      `the ${USER} user cannot run ${process.execPath} or read ${ROOT}: make them world-readable`,
    );
  }

  const ctl = (cmd: string) =>
    asUser(
      `${CTL} --config-dir ${dir} --config ${dir}/ejabberd.yml --spool ${dir}/spool --logs ${dir}/logs --node ${node} ${cmd}`,
    );
  const logs = async () => {
    const read = (f: string) => readFile(path.join(dir, "logs", f), "utf8").catch(() => "(none)");
    return `--- ejabberd.log\n${await read("ejabberd.log")}\n--- extauth.log\n${await read("extauth.log")}`;
  };
  const pid = async () => Number(await readFile(path.join(dir, "ejabberd.pid"), "utf8").catch(() => "0"));

  /** Stops the node and waits for its VM to exit (killed after 15 s). */
  const halt = async () => {
    const beam = await pid();
    await ctl("stop");
    const until = Date.now() + 15_000;
    while (beam > 0 && alive(beam) && Date.now() < until) await sleep(100);
    if (beam > 0 && alive(beam)) process.kill(beam, "SIGKILL");
  };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await halt();
    await rm(dir, { recursive: true, force: true });
  };
  /** Starts the node and waits until it says it is started; the caller stops it on failure. */
  const boot = async () => {
    const started = await ctl("start");
    if (started.code !== 0) {
      throw new Error(`ejabberdctl start failed (${started.code}): ${started.out}\n${await logs()}`);
    }
    const until = Date.now() + 30_000;
    let last = "";
    for (;;) {
      const s = await ctl("status");
      last = s.out;
      if (s.code === 0 && /is started/.test(s.out)) return;
      if (Date.now() > until) throw new Error(`ejabberd not started after 30 s: ${last}\n${await logs()}`);
      await sleep(200);
    }
  };

  try {
    await boot();
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    tlsPort,
    starttlsPort,
    ca: cert.cert,
    dir,
    logs,
    async extauthPids() {
      const text = await readFile(path.join(dir, "logs/extauth.pids"), "utf8").catch(() => "");
      return text.split("\n").filter(Boolean).map(Number);
    },
    ctl,
    async restart() {
      if (stopped) throw new Error("ejabberd was stopped for good");
      await halt();
      await boot();
    },
    stop,
  };
}

export interface LoginOptions {
  port: number;
  ca: string;
  domain: string;
  username: string;
  password: string;
}

/**
 * Logs in with `trustingClient`. Resolves with the bound JID once online (and disconnects), or rejects with
 * the client's error (a SASLError `not-authorized` for a refused password).
 */
export async function login(o: LoginOptions): Promise<string> {
  const service = `xmpps://127.0.0.1:${o.port}`;
  // xmpp.js 0.14 base64-encodes SASL with btoa(), i.e. as Latin-1: hand it the UTF-8 bytes as a "binary
  // string" so that a non-ASCII password reaches the server as RFC 4616 says (UTF-8)
  const password = Buffer.from(o.password, "utf8").toString("latin1");
  const xmpp = trustingClient({
    service,
    ca: o.ca,
    domain: o.domain,
    username: o.username,
    password,
    resource: "test",
  });
  // Not xmpp.start(): its `open` step can miss the server's stream header (it listens only after the
  // header write's callback) and then fail with the SASL error, leaving start()'s own `online` promise
  // rejected with no handler (an unhandled rejection in about one refused login out of five here).
  const online = new Promise<string>((resolve, reject) => {
    xmpp.on("online", (address) => resolve(address.toString()));
    xmpp.on("error", reject);
  });
  try {
    await xmpp.connect(service);
    const opened = xmpp.open({ domain: o.domain });
    opened.catch(() => {}); // the same race can leave it waiting for an `open` already seen: online decides
    return await Promise.race([online, opened.then(() => online)]);
  } finally {
    await xmpp.stop().catch(() => {});
  }
}
