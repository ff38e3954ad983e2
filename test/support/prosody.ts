import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { makeCertificate } from "./certificates.ts";
import { freePort, listening } from "./free-port.ts";
import { runAs, SU_ENV, shellWords } from "./run-as.ts";

/**
 * A private Prosody 0.12 (Debian packages `prosody` and `prosody-modules`, installed by
 * scripts/system-deps.sh) for one test file: its config written here into a folder of its own, run in the
 * foreground as the `prosody` user on loopback ports, with internal accounts made by `prosodyctl register`.
 * No s2s, no HTTP: c2s with direct TLS (XEP-0368, what the test clients use), c2s with STARTTLS, and a
 * component listener (XEP-0114).
 */

const run = promisify(execFile);
const PROSODY = "/usr/bin/prosody";
const PROSODYCTL = "/usr/bin/prosodyctl";
const USER = "prosody";

/** Why the Prosody suites cannot run here, or undefined when they can. */
export function prosodyUnavailable(): string | undefined {
  if (!existsSync(PROSODY)) return "prosody is not installed: run scripts/system-deps.sh as root";
  if (!existsSync("/usr/lib/prosody/modules/mod_cloud_notify")) {
    return "prosody-modules is not installed: run scripts/system-deps.sh as root";
  }
  if (process.getuid?.() !== 0) return "starting Prosody as its own user needs root (su prosody)";
  return undefined;
}

export interface ProsodyOptions {
  /** VirtualHosts; each may carry Lua lines of its own (options of its modules). */
  hosts: Record<string, string>;
  /** Components (XEP-0114) by JID, with their secret. */
  components?: Record<string, string>;
  /** Modules beyond the base set (roster, saslauth, tls, disco, ping, smacks). */
  modules?: string[];
  /** Global Lua lines (module options), written before the hosts; a function of the ports chosen. */
  global?: string | ((ports: { componentPort: number }) => string);
  /** Lua lines written last (a `Component` section as an operator writes it). */
  tail?: string;
}

export interface Prosody {
  /** c2s with direct TLS (XEP-0368). */
  tlsPort: number;
  starttlsPort: number;
  componentPort: number;
  /** PEM of the self-signed certificate it presents. */
  ca: string;
  dir: string;
  /** An internal account (prosodyctl register). */
  register(username: string, host: string, password: string): Promise<void>;
  logs(): Promise<string>;
  stop(): Promise<void>;
}

const lua = (s: string) => JSON.stringify(s); // a JSON string is a valid Lua string literal for these values

function config(
  o: ProsodyOptions & { dir: string; tlsPort: number; starttlsPort: number; componentPort: number },
) {
  const modules = ["roster", "saslauth", "tls", "disco", "ping", "smacks", ...(o.modules ?? [])];
  return `-- written by test/support/prosody.ts
pidfile = ${lua(path.join(o.dir, "prosody.pid"))}
data_path = ${lua(path.join(o.dir, "data"))}
certificates = ${lua(path.join(o.dir, "certs"))}
log = { { levels = { min = "debug" }, to = "file", filename = ${lua(path.join(o.dir, "prosody.log"))} } }
interfaces = { "127.0.0.1" }
c2s_ports = { ${o.starttlsPort} }
c2s_direct_tls_ports = { ${o.tlsPort} }
component_ports = { ${o.componentPort} }
component_interfaces = { "127.0.0.1" }
s2s_ports = { }
http_ports = { }
https_ports = { }
modules_enabled = { ${modules.map(lua).join(", ")} }
modules_disabled = { "s2s" }
authentication = "internal_hashed"
c2s_require_encryption = true
ssl = { certificate = ${lua(path.join(o.dir, "cert.pem"))}; key = ${lua(path.join(o.dir, "key.pem"))} }
${typeof o.global === "function" ? o.global({ componentPort: o.componentPort }) : (o.global ?? "")}
${Object.entries(o.hosts)
  .map(([host, lines]) => `VirtualHost ${lua(host)}\n${lines}`)
  .join("\n")}
${Object.entries(o.components ?? {})
  .map(([jid, secret]) => `Component ${lua(jid)}\n  component_secret = ${lua(secret)}`)
  .join("\n")}
${o.tail ?? ""}
`;
}

const asUser = (args: string[]) => runAs(USER, shellWords(args));

export async function startProsody(o: ProsodyOptions): Promise<Prosody> {
  const why = prosodyUnavailable();
  if (why) throw new Error(why);
  const dir = await mkdtemp(path.join(tmpdir(), "sidecars-prosody-"));
  const [tlsPort, starttlsPort, componentPort] = [await freePort(), await freePort(), await freePort()];
  const hosts = Object.keys(o.hosts);
  const cert = await makeCertificate(hosts[0] ?? "localhost", [...hosts, ...Object.keys(o.components ?? {})]);
  await mkdir(path.join(dir, "data"));
  await mkdir(path.join(dir, "certs"));
  await writeFile(path.join(dir, "cert.pem"), cert.cert);
  await writeFile(path.join(dir, "key.pem"), cert.key, { mode: 0o600 });
  const cfg = path.join(dir, "prosody.cfg.lua");
  await writeFile(cfg, config({ ...o, dir, tlsPort, starttlsPort, componentPort }));
  await run("chown", ["-R", `${USER}:${USER}`, dir]);

  const logs = async () =>
    `--- prosody.log\n${await readFile(path.join(dir, "prosody.log"), "utf8").catch(() => "(none)")}`;

  // -F: in the foreground, this child is Prosody's parent (su), its output ours
  const child: ChildProcess = spawn(
    "su",
    [USER, "-s", "/bin/sh", "-c", `exec ${PROSODY} --config '${cfg}' -F`],
    { env: SU_ENV, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout?.on("data", (c: Buffer) => {
    output += c.toString();
  });
  child.stderr?.on("data", (c: Buffer) => {
    output += c.toString();
  });
  let exit: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.on("exit", (code, signal) => {
      exit = `Prosody exited (${code ?? signal}): ${output.slice(-2000)}`;
      resolve();
    });
  });

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (!exit) {
      // Prosody's own pid (the pidfile), not su's: SIGTERM is its clean shutdown
      const pid = Number(await readFile(path.join(dir, "prosody.pid"), "utf8").catch(() => "0"));
      if (pid > 0) process.kill(pid, "SIGTERM");
      else child.kill("SIGTERM");
      const killer = setTimeout(() => {
        if (pid > 0) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {}
        }
        child.kill("SIGKILL");
      }, 15_000);
      await exited;
      clearTimeout(killer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const until = Date.now() + 30_000;
    for (const port of [tlsPort, starttlsPort, componentPort])
      await listening(port, until, () => exit, "Prosody");
  } catch (err) {
    const text = await logs();
    await stop();
    throw new Error(`${(err as Error).message}\n${text}`);
  }

  return {
    tlsPort,
    starttlsPort,
    componentPort,
    ca: cert.cert,
    dir,
    async register(username, host, password) {
      const r = await asUser([PROSODYCTL, "--config", cfg, "register", username, host, password]);
      if (r.code !== 0) throw new Error(`prosodyctl register ${username}@${host} failed: ${r.out}`);
    },
    logs,
    stop,
  };
}
