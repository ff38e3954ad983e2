/**
 * What a domain's config must say for the MongooseIM version that serves it (the HTTP auth contract of
 * MongooseIM 2.1.0's `ejabberd_auth_http` and 6.x's `mongoose_auth_http`): the domain config and the
 * MongooseIM config that match, side by side (`sidecars domains example`), and the disagreements between a
 * domain's `mongooseim` and its password settings, which the auth service and `sidecars doctor` warn about.
 */

export const MONGOOSEIM_VERSIONS = ["2.1.0", "6.x"] as const;
export type MongooseImVersion = (typeof MONGOOSEIM_VERSIONS)[number];

interface DomainFormat {
  mongooseim?: MongooseImVersion | undefined;
  passwordFormat: "plain" | "scram";
  scramFormat: "legacy" | "multi";
  keepCleartext: boolean;
}

/**
 * Why a domain's password settings do not fit the MongooseIM it declares, one sentence each with the fix;
 * none when it declares no version or they fit.
 */
export function formatMismatches(name: string, d: DomainFormat): string[] {
  const out: string[] = [];
  if (d.mongooseim === "2.1.0" && d.passwordFormat === "scram" && d.scramFormat === "multi") {
    out.push(
      `domain ${name}: MongooseIM 2.1.0 reads only the ==SCRAM== (SHA-1) form from get_password, and this domain answers ==MULTI_SCRAM==: set scramFormat "legacy", or passwordFormat "plain" as 2.1.0's default password_format is`,
    );
  }
  if (d.mongooseim === "6.x" && d.passwordFormat === "scram" && d.scramFormat === "legacy") {
    out.push(
      `domain ${name}: with the 2.1.0 ==SCRAM== form MongooseIM 6.x offers SCRAM-SHA-1 only: set scramFormat "multi"`,
    );
  }
  if (d.mongooseim === "6.x" && d.passwordFormat === "plain") {
    out.push(
      `domain ${name}: MongooseIM 6.x defaults to password.format "scram": with passwordFormat "plain" here, set [auth] password.format = "plain" there too (or use "scram" here)`,
    );
  }
  return out;
}

export interface ExampleOptions {
  domain: string;
  /** Where MongooseIM reaches the auth service. */
  authUrl: string;
  /** `user:password`, as MongooseIM sends it. */
  basicAuth: string;
}

/** The domain entry of config/<env>.json for a domain that MongooseIM `version` serves. */
export function domainExample(version: MongooseImVersion): Record<string, unknown> {
  return version === "2.1.0"
    ? // 2.1.0's default password_format is plain: MongooseIM sends the password to check_password; SCRAM
      // logins would need get_password's cleartext, so SASL PLAIN only (the MongooseIM side below)
      { mongooseim: "2.1.0", passwordFormat: "plain", keepCleartext: false, scramIterations: 4096 }
    : { mongooseim: "6.x", passwordFormat: "scram", scramFormat: "multi", scramIterations: 10_000 };
}

/** The MongooseIM side: 2.1.0's ejabberd.cfg (Erlang terms) or 6.x's mongooseim.toml. */
export function mongooseImExample(version: MongooseImVersion, o: ExampleOptions): string {
  if (version === "2.1.0") {
    return [
      "%% /etc/mongooseim/ejabberd.cfg (MongooseIM 2.1.0)",
      `{host_config, "${o.domain}", [`,
      "  {auth_method, http},",
      "  {auth_opts, [",
      `    {host, "${o.authUrl}"},`,
      '    {path_prefix, "/authorize/"},',
      `    {basic_auth, "${o.basicAuth}"},`,
      "    {password_format, plain}",
      "  ]},",
      "  %% password_format plain without cleartext kept: SASL PLAIN only (TLS required)",
      "  {sasl_mechanisms, [cyrsasl_plain]}",
      "]}.",
    ].join("\n");
  }
  return [
    "# /etc/mongooseim/mongooseim.toml (MongooseIM 6.x; per host type: several domains share one [auth])",
    "[auth]",
    '  password.format = "scram"',
    "  scram_iterations = 10000",
    "",
    "[auth.http]",
    `  basic_auth = "${o.basicAuth}"`,
    "",
    "[outgoing_pools.http.auth]",
    `  connection.host = "${o.authUrl}"`,
    '  connection.path_prefix = "/authorize/"',
  ].join("\n");
}
