import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { makeCertificate } from "./certificates.ts";
import { freePort, listening } from "./free-port.ts";

/**
 * A private OpenLDAP slapd 2.5 (Debian packages `slapd` and `ldap-utils`, installed by scripts/system-deps.sh)
 * for one test file: a slapd.conf and an mdb database in a folder of its own, in the foreground on two
 * loopback ports (ldap:// with StartTLS, ldaps://) with a self-signed certificate for 127.0.0.1 and
 * localhost, cn=Monitor for its counters, and the memberof overlay (a group's `member` shows as `memberOf`
 * on the member). Entries are added with ldapadd as the root DN.
 *
 * Access: passwords are only ever compared (binds); only the service account `cn=reader,ou=services,<suffix>`
 * reads ou=groups; anyone reads the rest (so a DN template's user_exists works without an account). A DN with
 * an empty password binds anonymously and succeeds (`allow bind_anon_dn`), as in Active Directory.
 */

const run = promisify(execFile);
const SLAPD = "/usr/sbin/slapd";
const LDAPADD = "/usr/bin/ldapadd";
const LDAPSEARCH = "/usr/bin/ldapsearch";

export const SUFFIX = "dc=example,dc=org";
export const PEOPLE = `ou=people,${SUFFIX}`;
export const GROUPS = `ou=groups,${SUFFIX}`;
export const READER_DN = `cn=reader,ou=services,${SUFFIX}`;
export const READER_PASSWORD = "reader's secret";

/** Why the slapd tests cannot run here, or undefined when they can. */
export function slapdUnavailable(): string | undefined {
  if (!existsSync(SLAPD) || !existsSync(LDAPADD))
    return "slapd is not installed: run scripts/system-deps.sh as root";
  if (!existsSync("/usr/lib/ldap/back_mdb.la")) return "slapd's back_mdb module is missing: reinstall slapd";
  return undefined;
}

export interface Slapd {
  /** ldap://127.0.0.1:<port> (StartTLS offered). */
  url: string;
  /** ldaps://127.0.0.1:<port>. */
  ldapsUrl: string;
  /** The self-signed certificate it presents (PEM), and a file holding it: a `tls.ca`. */
  ca: string;
  caFile: string;
  rootDn: string;
  rootPassword: string;
  dir: string;
  /** Adds LDIF entries (ldapadd as the root DN). */
  add(ldif: string): Promise<void>;
  /** Connections accepted since slapd started (cn=Monitor's total), including the one asking. */
  connectionsOpened(): Promise<number>;
  /** Connections open now (cn=Monitor's current), including the one asking. */
  connectionsOpen(): Promise<number>;
  /** Bind operations completed since slapd started, including the asking one's own bind. */
  bindsCompleted(): Promise<number>;
  /** SIGSTOP: connections are still accepted by the kernel, nothing is answered. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** Stops slapd (its data stays); its ports refuse connections until `start`. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and data. */
  start(): Promise<void>;
  /** Stops it for good and removes its folder. */
  close(): Promise<void>;
}

/** `{SSHA}` of a password (RFC 2307 userPassword as slappasswd writes it), so no cleartext sits in the data. */
export function ssha(password: string): string {
  const salt = randomBytes(8);
  const digest = createHash("sha1").update(password, "utf8").update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString("base64")}`;
}

/** An inetOrgPerson under ou=people with this uid and password (an LDIF record). */
export function person(uid: string, password: string, more = ""): string {
  return `dn: uid=${escapeRdn(uid)},${PEOPLE}
objectClass: inetOrgPerson
uid: ${uid}
cn: ${uid}
sn: ${uid}
userPassword: ${ssha(password)}
${more}`;
}

/** A DN value as LDIF writes it (RFC 4514): enough for the test names (`,`, `+`, `\`, `*` is plain). */
const escapeRdn = (v: string) => v.replace(/[\\,+"<>;=]/g, (c) => `\\${c}`);

function slapdConf(dir: string, rootPassword: string): string {
  return `# written by test/support/slapd.ts
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile ${dir}/slapd.pid
argsfile ${dir}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
TLSCACertificateFile ${dir}/cert.pem
TLSCertificateFile ${dir}/cert.pem
TLSCertificateKeyFile ${dir}/key.pem
# a DN with an empty password is an anonymous bind that succeeds, as Active Directory has it by default
allow bind_anon_dn

database monitor
access to * by dn.exact="cn=admin,${SUFFIX}" read by * none

database mdb
maxsize 33554432
suffix "${SUFFIX}"
rootdn "cn=admin,${SUFFIX}"
rootpw ${rootPassword}
directory ${dir}/data
index objectClass eq
index uid eq
overlay memberof
access to attrs=userPassword by anonymous auth by * none
access to dn.subtree="${GROUPS}" by dn.exact="${READER_DN}" read by * none
access to * by * read
`;
}

/** A server on `port` that cuts every connection: holds a stopped slapd's port so no other test takes it. */
async function holdPort(port: number): Promise<Server | undefined> {
  const s = createServer((socket) => socket.destroy());
  return new Promise((resolve) => {
    s.once("error", () => resolve(undefined)); // taken meanwhile: nothing to hold
    s.listen(port, "127.0.0.1", () => resolve(s));
  });
}

export async function startSlapd(): Promise<Slapd> {
  const why = slapdUnavailable();
  if (why) throw new Error(why);
  const dir = await mkdtemp(path.join(tmpdir(), "sidecars-slapd-"));
  if (!/^[\w/.-]+$/.test(dir)) throw new Error(`${dir}: slapd.conf needs a path without spaces or quotes`);
  const [port, ldapsPort] = [await freePort(), await freePort()];
  const rootPassword = randomBytes(12).toString("hex");
  const rootDn = `cn=admin,${SUFFIX}`;
  const cert = await makeCertificate("localhost");
  await mkdir(path.join(dir, "data"));
  await writeFile(path.join(dir, "cert.pem"), cert.cert);
  await writeFile(path.join(dir, "key.pem"), cert.key, { mode: 0o600 });
  await writeFile(path.join(dir, "slapd.conf"), slapdConf(dir, rootPassword));
  const url = `ldap://127.0.0.1:${port}`;
  const ldapsUrl = `ldaps://127.0.0.1:${ldapsPort}`;

  let child: ChildProcess | undefined;
  let output = "";
  let exit: string | undefined;
  let exited: Promise<void> = Promise.resolve();
  let held: (Server | undefined)[] = [];

  const boot = async () => {
    await Promise.all(held.map((s) => new Promise((r) => (s ? s.close(r) : r(undefined)))));
    held = [];
    output = "";
    exit = undefined;
    // -d: in the foreground (this child is slapd, its pid the one to signal), debug output "stats" on stderr
    const c = spawn(
      SLAPD,
      ["-f", path.join(dir, "slapd.conf"), "-h", `${url}/ ${ldapsUrl}/`, "-d", "stats"],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    child = c;
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-20_000);
    };
    c.stdout?.on("data", keep);
    c.stderr?.on("data", keep);
    exited = new Promise<void>((resolve) => {
      c.on("exit", (code, signal) => {
        exit = `slapd exited (${code ?? signal}): ${output.slice(-3000)}`;
        resolve();
      });
    });
    const until = Date.now() + 30_000;
    for (const p of [port, ldapsPort]) await listening(p, until, () => exit, "slapd");
  };

  const halt = async () => {
    const c = child;
    if (!c || exit) return;
    c.kill("SIGCONT"); // a paused slapd cannot shut down
    c.kill("SIGTERM");
    const killer = setTimeout(() => c.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(killer);
  };

  const ldap = async (command: string, args: string[]) => {
    try {
      return (
        await run(command, ["-x", "-H", url, "-D", rootDn, "-w", rootPassword, ...args], { timeout: 30_000 })
      ).stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(
        `${path.basename(command)} failed: ${e.stderr ?? e.message}\n--- slapd\n${output.slice(-3000)}`,
      );
    }
  };

  const monitorCounter = async (dn: string, attribute = "monitorCounter") => {
    const out = await ldap(LDAPSEARCH, ["-LLL", "-b", dn, "-s", "base", attribute]);
    const m = new RegExp(`^${attribute}: (\\d+)$`, "m").exec(out);
    if (!m) throw new Error(`${dn} gave no ${attribute}: ${out}`);
    return Number(m[1]);
  };

  const add = async (ldif: string) => {
    const file = path.join(dir, `add-${randomBytes(4).toString("hex")}.ldif`);
    await writeFile(file, ldif);
    await ldap(LDAPADD, ["-f", file]);
    await rm(file, { force: true });
  };

  try {
    await boot();
    await add(`dn: ${SUFFIX}
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ${PEOPLE}
objectClass: organizationalUnit
ou: people

dn: ${GROUPS}
objectClass: organizationalUnit
ou: groups

dn: ou=services,${SUFFIX}
objectClass: organizationalUnit
ou: services

dn: ${READER_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: reader
userPassword: ${ssha(READER_PASSWORD)}
`);
  } catch (err) {
    await halt();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  let closed = false;
  return {
    url,
    ldapsUrl,
    ca: cert.cert,
    caFile: path.join(dir, "cert.pem"),
    rootDn,
    rootPassword,
    dir,
    add,
    connectionsOpened: () => monitorCounter("cn=Total,cn=Connections,cn=Monitor"),
    connectionsOpen: () => monitorCounter("cn=Current,cn=Connections,cn=Monitor"),
    bindsCompleted: () => monitorCounter("cn=Bind,cn=Operations,cn=Monitor", "monitorOpCompleted"),
    pause: () => child?.kill("SIGSTOP"),
    resume: () => child?.kill("SIGCONT"),
    async stop() {
      await halt();
      held = await Promise.all([holdPort(port), holdPort(ldapsPort)]);
    },
    start: boot,
    async close() {
      if (closed) return;
      closed = true;
      await halt();
      await Promise.all(held.map((s) => new Promise((r) => (s ? s.close(r) : r(undefined)))));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
