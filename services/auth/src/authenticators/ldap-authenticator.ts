import { randomBytes } from "node:crypto";
import { FilterParser } from "ldapts";
import { z } from "zod";
import { StartupProblems } from "#common/errors.ts";
import { OptionError, readOptionFile } from "#common/plugins/problems.ts";
import type { Jid } from "#common/users/jid.ts";
import {
  type Authenticator,
  type AuthenticatorDeps,
  type CheckResult,
  defineAuthenticator,
} from "./authenticator.ts";
import { BackendError } from "./http-authenticator.ts";
import { Directory } from "./ldap-directory.ts";
import { escapeDnValue, escapeFilterValue, fillTemplate } from "./ldap-escape.ts";

/**
 * The `ldap` kind: a domain whose users are people of an LDAP directory (RFC 4511; OpenLDAP, Active
 * Directory, 389 DS…). A password is checked by binding as the user (RFC 4513 5.1.3): their DN is made from a
 * template or found by a search; a group condition may then say who of them may chat. The directory answers
 * "wrong password" (result code 49) or "no such entry" (32) for a "no"; anything else (down, too slow, TLS
 * refused, another error) throws a BackendError, so an outage is never taken for a wrong password, as with
 * the http kind. It holds no credentials: get_password, set_password, register and remove_user are refused by
 * the auth core, so MongooseIM must use SASL PLAIN (docs/auth.md "LDAP domains").
 */

const scope = z
  .enum(["one", "sub"])
  .default("sub")
  .describe("`sub`: anywhere below baseDn; `one`: its children only");

export const ldapOptionsSchema = z
  .object({
    url: z.url({ protocol: /^ldaps?$/ }).describe("the directory: ldap://host[:389] or ldaps://host[:636]"),
    startTls: z
      .boolean()
      .default(false)
      .describe("upgrade ldap:// to TLS (StartTLS) before anything else is sent"),
    tls: z
      .object({
        ca: z
          .string()
          .min(1)
          .optional()
          .describe(
            "PEM file of the CA(s) that signed the directory's certificate, trusted instead of the system's",
          ),
        rejectUnauthorized: z.boolean().default(true).describe("false accepts any certificate: tests only"),
        servername: z
          .string()
          .min(1)
          .optional()
          .describe("the name the certificate must carry, when it is not the URL's host"),
      })
      .strict()
      .default({ rejectUnauthorized: true }),
    userDn: z
      .string()
      .min(1)
      .optional()
      .describe(
        "the user's DN, {user} standing for the JID's user part: uid={user},ou=people,dc=example,dc=org",
      ),
    search: z
      .object({
        baseDn: z.string().min(1).describe("where users are searched: ou=people,dc=example,dc=org"),
        filter: z
          .string()
          .default("(uid={user})")
          .describe("the filter that finds exactly one user, {user} standing for the JID's user part"),
        scope,
      })
      .strict()
      .optional()
      .describe("search-then-bind: the user's DN is the one entry this search finds"),
    bindDn: z
      .string()
      .min(1)
      .optional()
      .describe("the service account searches bind as (anonymous without it)"),
    bindPassword: z.string().min(1).optional().describe("its password; or bindPasswordFile"),
    bindPasswordFile: z
      .string()
      .min(1)
      .optional()
      .describe("file holding its password (a final line break is not part of it)"),
    groupFilter: z
      .string()
      .min(1)
      .optional()
      .describe(
        "who may log in: a filter the user's own entry must match: (memberOf=cn=chat,ou=groups,dc=example,dc=org)",
      ),
    groupSearch: z
      .object({
        baseDn: z.string().min(1).describe("where groups are searched: ou=groups,dc=example,dc=org"),
        filter: z
          .string()
          .min(1)
          .describe(
            "matches a group of the user, {dn} standing for the user's DN: (&(cn=chat)(member={dn}))",
          ),
        scope,
      })
      .strict()
      .optional()
      .describe("who may log in: the users this search finds a group for"),
    timeoutMs: z
      .number()
      .int()
      .min(50)
      .max(30_000)
      .default(1000)
      .describe("bound on each directory operation (StartTLS, bind, search)"),
    connectTimeoutMs: z
      .number()
      .int()
      .min(50)
      .max(30_000)
      .default(1000)
      .describe("bound on opening a connection (TCP, and TLS for ldaps://)"),
    poolSize: z
      .number()
      .int()
      .min(1)
      .max(16)
      .default(2)
      .describe(
        "connections kept open for searches (bound as the service account), and as many for users' binds",
      ),
  })
  .strict()
  .superRefine((o, ctx) => {
    const problem = (path: string[], message: string) => ctx.addIssue({ code: "custom", path, message });
    if ((o.userDn === undefined) === (o.search === undefined)) {
      problem(
        o.userDn === undefined ? [] : ["search"],
        o.userDn === undefined
          ? "how users are found is missing: set userDn (a DN template) or search (search-then-bind)"
          : "userDn and search both say how users are found: keep one",
      );
    }
    if (o.userDn !== undefined && !o.userDn.includes("{user}"))
      problem(["userDn"], "must contain {user}: uid={user},ou=people,dc=example,dc=org");
    if (o.search && !o.search.filter.includes("{user}"))
      problem(["search", "filter"], "must contain {user}: (uid={user})");
    const filters: [string[], string | undefined][] = [
      [["search", "filter"], o.search?.filter],
      [["groupFilter"], o.groupFilter],
      [["groupSearch", "filter"], o.groupSearch?.filter],
    ];
    for (const [path, filter] of filters) {
      const why = filter === undefined ? undefined : filterProblem(filter);
      if (why) problem(path, why);
    }
    if (o.groupSearch && !/\{(dn|user)\}/.test(o.groupSearch.filter))
      problem(
        ["groupSearch", "filter"],
        "must contain {dn} or {user}, or every user would be in or out: (member={dn})",
      );
    const ldaps = o.url.startsWith("ldaps:");
    if (o.startTls && ldaps)
      problem(["startTls"], "ldaps:// is TLS from the start: remove startTls, or use ldap:// with it");
    if (!ldaps && !o.startTls && (o.tls.ca !== undefined || o.tls.servername !== undefined))
      problem(["tls"], "no TLS is used with ldap:// alone: set startTls: true, or use ldaps://");
    if (o.bindPassword !== undefined && o.bindPasswordFile !== undefined)
      problem(["bindPasswordFile"], "bindPassword and bindPasswordFile are both set: keep one");
    if (o.bindDn !== undefined && o.bindPassword === undefined && o.bindPasswordFile === undefined)
      problem(["bindDn"], "needs bindPasswordFile (or bindPassword): an empty password binds anonymously");
    if (o.bindDn === undefined && (o.bindPassword !== undefined || o.bindPasswordFile !== undefined))
      problem(["bindDn"], "required with a bind password: the service account's DN");
  });

export type LdapOptions = z.infer<typeof ldapOptionsSchema>;

/** Why a filter template is not one, or undefined; its placeholders filled with a plain value first. */
function filterProblem(template: string): string | undefined {
  const filled = fillTemplate(template, { user: "x", dn: "cn=x" });
  if (!filled.startsWith("(") || !filled.endsWith(")")) return "must be in parentheses: (uid={user})";
  try {
    FilterParser.parseString(filled);
    return undefined;
  } catch (err) {
    return `is not an LDAP filter (RFC 4515): ${(err as Error).message}`;
  }
}

function servicePassword(o: LdapOptions): string | undefined {
  if (o.bindPasswordFile === undefined) return o.bindPassword;
  const text = readOptionFile("bindPasswordFile", o.bindPasswordFile)
    .toString("utf8")
    .replace(/\r?\n$/, "");
  if (text === "")
    throw new OptionError(
      "bindPasswordFile",
      `${o.bindPasswordFile} is empty: an empty password binds anonymously`,
    );
  return text;
}

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/;

export default defineAuthenticator({
  kind: "ldap",
  summary: "an LDAP directory: binds as the user (DN template or search-then-bind), with a group condition",
  options: ldapOptionsSchema,
  create: (options, deps) => createLdapAuthenticator(options, deps),
});

/** The ldap authenticator of parsed options. */
export function createLdapAuthenticator(o: LdapOptions, deps: AuthenticatorDeps): Authenticator {
  if (deps.domainConfig.passwordFormat !== "plain") {
    throw new StartupProblems([
      `domains.${deps.domain}.passwordFormat: an ldap domain has no password to hand out (get_password): ` +
        'set "plain", so that MongooseIM asks check_password (and allows only SASL PLAIN, docs/auth.md)',
    ]);
  }
  const password = servicePassword(o);
  const directory = new Directory({
    url: o.url,
    startTls: o.startTls,
    tls: {
      ...(o.tls.ca && { ca: readOptionFile("tls.ca", o.tls.ca) }),
      rejectUnauthorized: o.tls.rejectUnauthorized,
      ...(o.tls.servername && { servername: o.tls.servername }),
    },
    timeoutMs: o.timeoutMs,
    connectTimeoutMs: o.connectTimeoutMs,
    poolSize: o.poolSize,
    ...(o.bindDn !== undefined && password !== undefined && { service: { dn: o.bindDn, password } }),
  });
  const { log, domain } = deps;
  /** A base the directory does not have: no user can be told apart, so every check could not tell. */
  const missingBase = (key: string, dn: string) =>
    new BackendError(`domains.${domain}.authenticator.options.${key}: ${dn} does not exist in the directory`);
  if (o.url.startsWith("ldap:") && !o.startTls && !LOOPBACK.test(new URL(o.url).hostname))
    log.warn(
      { domain },
      "ldap authenticator without TLS: passwords cross the network in clear; set startTls or use ldaps://",
    );
  if (!o.tls.rejectUnauthorized)
    log.warn({ domain }, "ldap authenticator with tls.rejectUnauthorized false: any certificate is accepted");

  /** The user's DN: the template filled, or the one entry the search finds (none or several: undefined). */
  async function dnOf(jid: Jid): Promise<string | undefined> {
    if (o.userDn !== undefined) return fillTemplate(o.userDn, { user: escapeDnValue(jid.node) });
    const s = o.search as NonNullable<LdapOptions["search"]>;
    const found = await directory.search({
      base: s.baseDn,
      scope: s.scope,
      filter: fillTemplate(s.filter, { user: escapeFilterValue(jid.node) }),
      sizeLimit: 2,
    });
    if (found === undefined) throw missingBase("search.baseDn", s.baseDn);
    if (found.length > 1)
      log.warn(
        { domain, user: jid.node },
        "ldap search found several entries for one user: refused; make search.filter match one",
      );
    return found.length === 1 ? found[0] : undefined;
  }

  /** Whether the group condition lets `dn` log in (true without one). */
  async function mayLogIn(dn: string, jid: Jid): Promise<boolean> {
    const values = { user: escapeFilterValue(jid.node), dn: escapeFilterValue(dn) };
    if (o.groupFilter !== undefined) {
      const own = await directory.search({
        base: dn,
        scope: "base",
        filter: fillTemplate(o.groupFilter, values),
        sizeLimit: 1,
      });
      if (!own?.length) return false;
    }
    if (o.groupSearch !== undefined) {
      const g = o.groupSearch;
      const groups = await directory.search({
        base: g.baseDn,
        scope: g.scope,
        filter: fillTemplate(g.filter, values),
        sizeLimit: 1,
      });
      if (groups === undefined) throw missingBase("groupSearch.baseDn", g.baseDn);
      if (groups.length === 0) return false;
    }
    return true;
  }

  return {
    kind: "ldap",
    async checkPassword(jid, password): Promise<CheckResult> {
      // a DN with no password is an unauthenticated bind (RFC 4513 5.1.2), which many directories accept
      if (password === "") return { ok: false, reason: "bad_password" };
      const dn = await dnOf(jid);
      if (dn === undefined) {
        // a bind as no one, so that a name nobody has costs the round trip a wrong password does: the time of
        // the answer tells no one which names exist (web_users does the same with a dummy derivation)
        if (o.search !== undefined)
          await directory.bind(`cn=${randomBytes(12).toString("hex")},${o.search.baseDn}`, password);
        return { ok: false, reason: "unknown_user" };
      }
      const bound = await directory.bind(dn, password);
      if (bound === "invalid_credentials") return { ok: false, reason: "bad_password" };
      if (bound === "no_such_object") return { ok: false, reason: "unknown_user" };
      // asked after the bind: only the right password learns that its owner is outside the group
      if (!(await mayLogIn(dn, jid))) return { ok: false, reason: "disabled" };
      return { ok: true };
    },
    async userExists(jid) {
      const dn = await dnOf(jid);
      if (dn === undefined) return false;
      if (o.userDn !== undefined) {
        const entry = await directory.search({
          base: dn,
          scope: "base",
          filter: "(objectClass=*)",
          sizeLimit: 1,
        });
        if (!entry?.length) return false;
      }
      return mayLogIn(dn, jid);
    },
    close: () => directory.close(),
  };
}
