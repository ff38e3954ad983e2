import { SCRAM_HASHES, type ScramCredentials, type ScramEntry, type ScramHash } from "./scram.ts";

/**
 * MongooseIM's text forms of SCRAM credentials (docs/auth.md "Stored credentials"; https://esl.github.io/MongooseDocs/latest/developers-guide/SCRAM-serialization/):
 *   2.x:  ==SCRAM==,<StoredKey>,<ServerKey>,<Salt>,<IterationCount>            (SHA-1 only)
 *   6.x:  ==MULTI_SCRAM==,<IterationCount>,===SHA1===<salt>|<stored>|<server>,==SHA256==<salt>|<stored>|<server>,…
 * Early 6.x releases wrote one salt for all hashes: ==MULTI_SCRAM==,<salt>,<i>,===SHA1===<stored>|<server>,…
 * which is read too. All values are base64.
 */

const PREFIX: Record<ScramHash, string> = {
  sha1: "===SHA1===",
  sha224: "==SHA224==",
  sha256: "==SHA256==",
  sha384: "==SHA384==",
  sha512: "==SHA512==",
};

const KEY_BYTES: Record<ScramHash, number> = { sha1: 20, sha224: 28, sha256: 32, sha384: 48, sha512: 64 };
const MAX_ITERATIONS = 1_000_000;

/** Bytes of canonical base64, or undefined: what goes in must come back out unchanged. */
function base64Bytes(text: string | undefined): number | undefined {
  if (!text || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  const bytes = Buffer.from(text, "base64");
  return bytes.toString("base64") === text ? bytes.length : undefined;
}

export function isScramSerialization(text: string): boolean {
  return text.startsWith("==SCRAM==,") || text.startsWith("==MULTI_SCRAM==,");
}

export function toLegacySerialization(creds: ScramCredentials): string | undefined {
  const e = creds.sha1;
  return e ? `==SCRAM==,${e.storedKey},${e.serverKey},${e.salt},${creds.iterations}` : undefined;
}

/** The 6.x form with the wanted hashes that are stored; undefined when none is. */
export function toMultiSerialization(
  creds: ScramCredentials,
  hashes: readonly ScramHash[],
): string | undefined {
  const parts = hashes
    .filter((h) => creds[h])
    .map((h) => {
      const e = creds[h] as ScramEntry;
      return `${PREFIX[h]}${e.salt}|${e.storedKey}|${e.serverKey}`;
    });
  return parts.length > 0 ? `==MULTI_SCRAM==,${creds.iterations},${parts.join(",")}` : undefined;
}

function iterations(text: string | undefined): number | undefined {
  if (!text || !/^\d{1,9}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= MAX_ITERATIONS ? n : undefined;
}

/** An entry whose keys have the hash's length and whose salt is not empty. */
function entry(
  hash: ScramHash,
  salt: string | undefined,
  storedKey: string | undefined,
  serverKey: string | undefined,
): ScramEntry | undefined {
  const ok =
    (base64Bytes(salt) ?? 0) >= 1 &&
    base64Bytes(storedKey) === KEY_BYTES[hash] &&
    base64Bytes(serverKey) === KEY_BYTES[hash];
  return ok
    ? { salt: salt as string, storedKey: storedKey as string, serverKey: serverKey as string }
    : undefined;
}

/** Reads any of the three forms; undefined for anything malformed. */
export function parseScramSerialization(text: string): ScramCredentials | undefined {
  const fields = text.split(",");
  if (fields[0] === "==SCRAM==") {
    if (fields.length !== 5) return undefined;
    const i = iterations(fields[4]);
    const e = entry("sha1", fields[3], fields[1], fields[2]);
    return i && e ? { iterations: i, sha1: e } : undefined;
  }
  if (fields[0] !== "==MULTI_SCRAM==" || fields.length < 3) return undefined;
  // per-hash salts: ==MULTI_SCRAM==,<i>,<prefix><salt>|<stored>|<server>,…
  // one salt:       ==MULTI_SCRAM==,<salt>,<i>,<prefix><stored>|<server>,…
  const perHash = iterations(fields[1]) !== undefined && fields[2]?.startsWith("==");
  const i = perHash ? iterations(fields[1]) : iterations(fields[2]);
  const sharedSalt = perHash ? undefined : fields[1];
  if (!i) return undefined;
  const creds: ScramCredentials = { iterations: i };
  for (const field of fields.slice(perHash ? 2 : 3)) {
    const hash = SCRAM_HASHES.find((h) => field.startsWith(PREFIX[h]));
    if (!hash || creds[hash]) return undefined;
    const values = field.slice(PREFIX[hash].length).split("|");
    const e = perHash
      ? entry(hash, values[0], values[1], values[2])
      : entry(hash, sharedSalt, values[0], values[1]);
    if (!e || values.length !== (perHash ? 3 : 2)) return undefined;
    creds[hash] = e;
  }
  return SCRAM_HASHES.some((h) => creds[h]) ? creds : undefined;
}
