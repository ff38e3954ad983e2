import { readFileSync } from "node:fs";
import type { PasswordSource } from "#common/config/buddies-schema.ts";
import type { Config } from "#common/config/schema.ts";
import type { XmppUploadConfig } from "#common/config/xmpp-upload-schema.ts";
import { fromRoot } from "#common/paths.ts";

/**
 * The shared secrets of `media.xmppUpload.domains`, read once when the routes are built: a secret that cannot
 * be read stops the service at startup with the key and the fix, rather than failing every upload later.
 */

export interface DomainSecrets {
  /** MongooseIM's `s3.secret_access_key` */
  s3?: string;
  /** ejabberd's `external_secret`, Prosody's `http_upload_external_secret` / `http_file_share_secret` */
  external?: string;
}

function readSecret(source: PasswordSource, key: string, config: Pick<Config, "secrets">): string {
  if ("env" in source) {
    const value = config.secrets.env(source.env);
    if (!value)
      throw new Error(`${key}: the environment variable ${source.env} is not set: set it to the secret`);
    return value;
  }
  let text: string;
  try {
    text = readFileSync(fromRoot(source.file), "utf8");
  } catch (err) {
    throw new Error(
      `${key}: cannot read ${source.file} (${(err as NodeJS.ErrnoException).code}): fix the path or its permissions`,
    );
  }
  const value = text.split(/\r?\n/, 1)[0] ?? "";
  if (value === "") throw new Error(`${key}: ${source.file} is empty: write the secret on its first line`);
  return value;
}

export function readDomainSecrets(
  settings: XmppUploadConfig,
  config: Pick<Config, "secrets">,
): Map<string, DomainSecrets> {
  const secrets = new Map<string, DomainSecrets>();
  for (const [domain, d] of Object.entries(settings.domains)) {
    const key = `media.xmppUpload.domains.${domain}`;
    secrets.set(domain, {
      ...(d.s3 ? { s3: readSecret(d.s3.secretAccessKey, `${key}.s3.secretAccessKey`, config) } : {}),
      ...(d.external ? { external: readSecret(d.external.secret, `${key}.external.secret`, config) } : {}),
    });
  }
  return secrets;
}
